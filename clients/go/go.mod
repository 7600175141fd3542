// The generated Go client for Switchyard agents (regenerate with `npx buf generate` at the
// repository root). The requirements are the oldest versions the generated code needs, which are
// also the versions Debian 12 packages (golang-google-grpc-dev, golang-google-protobuf-dev) for
// building offline in GOPATH mode; in module mode, run `go mod tidy` once to fetch them.
module github.com/switchyard-mesh/switchyard/clients/go

go 1.19

require (
	google.golang.org/grpc v1.33.3
	google.golang.org/protobuf v1.28.1
)
