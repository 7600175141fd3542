// The generated Go client for Switchyard agents (regenerate with `npx buf generate` at the
// repository root). The requirements are the versions the code is built and tested with: Debian
// 12's packages (golang-google-grpc-dev, golang-google-protobuf-dev), used offline in GOPATH
// mode by the tests; in module mode, run `go mod tidy` once to fetch them.
module github.com/switchyard-mesh/switchyard/clients/go

go 1.19

require (
	google.golang.org/grpc v1.33.3
	google.golang.org/protobuf v1.28.1
)
