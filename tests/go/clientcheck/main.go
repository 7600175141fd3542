// Command clientcheck runs the generated Go client (clients/go) against an agent. The Rust
// end-to-end tests (tests/e2e/clients.rs) build it in GOPATH mode with Debian's Go toolchain
// and run it:
//
//	clientcheck HOST:PORT [AGENT]
//
// HOST:PORT is an agent's gRPC port, or the gateway's port with AGENT naming the agent (sent
// as `x-switchyard-agent`). It runs the four AgentService call kinds (unary, server streaming,
// client streaming, bidirectional with a cancel and a half-close), A2A SendMessage /
// SubscribeToTask / GetTask, a call without `a2a-version` (refused) and grpc.health.v1
// Check, against the echo agent. It prints one line per check and `ALL OK`,
// and exits 1 on the first failure.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	a2av1 "github.com/switchyard-mesh/switchyard/clients/go/lf/a2a/v1"
	switchyardv1 "github.com/switchyard-mesh/switchyard/clients/go/switchyard/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// timeout bounds every call (sent as grpc-timeout).
const timeout = 30 * time.Second

var counter int

func check(ok bool, what string) {
	if !ok {
		fmt.Printf("FAIL: %s\n", what)
		os.Exit(1)
	}
	fmt.Printf("ok: %s\n", what)
}

func must(err error, what string) {
	if err != nil {
		fmt.Printf("FAIL: %s: %v\n", what, err)
		os.Exit(1)
	}
}

func message(text string, meta map[string]interface{}) *a2av1.Message {
	counter++
	s, err := structpb.NewStruct(meta)
	must(err, "metadata")
	return &a2av1.Message{
		MessageId: fmt.Sprintf("go-%d-%d", time.Now().UnixNano(), counter),
		Role:      a2av1.Role_ROLE_USER,
		Parts:     []*a2av1.Part{{Content: &a2av1.Part_Text{Text: text}}},
		Metadata:  s,
	}
}

func main() {
	target, agent := os.Args[1], ""
	if len(os.Args) > 2 {
		agent = os.Args[2]
	}
	dial, cancelDial := context.WithTimeout(context.Background(), timeout)
	defer cancelDial()
	conn, err := grpc.DialContext(dial, target, grpc.WithInsecure(), grpc.WithBlock())
	must(err, "dial")
	defer conn.Close()

	pairs := []string{"a2a-version", "1.0"}
	if agent != "" {
		pairs = append(pairs, "x-switchyard-agent", agent)
	}
	// call returns a context with the call's metadata and deadline.
	call := func(md ...string) (context.Context, context.CancelFunc) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		return metadata.NewOutgoingContext(ctx, metadata.Pairs(md...)), cancel
	}
	svc := switchyardv1.NewAgentServiceClient(conn)
	a2a := a2av1.NewA2AServiceClient(conn)

	ctx, cancel := call(pairs...)
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	cancel()
	must(err, "health")
	check(h.Status == healthpb.HealthCheckResponse_SERVING, "health: SERVING")

	// Unary.
	ctx, cancel = call(pairs...)
	r, err := svc.SendMessage(ctx, &a2av1.SendMessageRequest{Message: message("hello", nil)})
	cancel()
	must(err, "SendMessage")
	check(r.GetTask().GetStatus().GetState() == a2av1.TaskState_TASK_STATE_COMPLETED &&
		r.GetTask().GetArtifacts()[0].GetParts()[0].GetText() == "hello",
		"unary SendMessage: COMPLETED, the artifact echoes the text")

	// Server streaming.
	ctx, cancel = call(pairs...)
	stream, err := svc.SendStreamingMessage(ctx, &a2av1.SendMessageRequest{
		Message: message("streamed", map[string]interface{}{"chunks": 3}),
	})
	must(err, "SendStreamingMessage")
	events := drain(stream)
	cancel()
	artifacts := 0
	for _, e := range events {
		if e.GetArtifactUpdate() != nil {
			artifacts++
		}
	}
	check(events[0].GetTask() != nil && artifacts == 4 &&
		events[len(events)-1].GetStatusUpdate().GetStatus().GetState() == a2av1.TaskState_TASK_STATE_COMPLETED,
		"server-streaming SendStreamingMessage: task, 3 chunks + echo artifact, COMPLETED")

	// Client streaming: header, then a raw part, then a chunk appended to it.
	ctx, cancel = call(pairs...)
	parts, err := svc.SendMessageParts(ctx)
	must(err, "SendMessageParts")
	must(parts.Send(&switchyardv1.SendMessagePartsRequest{Frame: &switchyardv1.SendMessagePartsRequest_Header{
		Header: &a2av1.SendMessageRequest{Message: message("head", nil)},
	}}), "send header")
	must(parts.Send(&switchyardv1.SendMessagePartsRequest{Frame: &switchyardv1.SendMessagePartsRequest_Part{
		Part: &a2av1.Part{Content: &a2av1.Part_Raw{Raw: []byte("ab")}, Filename: "f.bin", MediaType: "application/octet-stream"},
	}}), "send part")
	must(parts.Send(&switchyardv1.SendMessagePartsRequest{Frame: &switchyardv1.SendMessagePartsRequest_RawChunk{
		RawChunk: []byte("cd"),
	}}), "send raw_chunk")
	assembled, err := parts.CloseAndRecv()
	cancel()
	must(err, "SendMessageParts response")
	ap := assembled.GetTask().GetArtifacts()[0].GetParts()
	check(assembled.GetTask().GetStatus().GetState() == a2av1.TaskState_TASK_STATE_COMPLETED &&
		len(ap) == 2 && ap[0].GetText() == "head" && string(ap[1].GetRaw()) == "abcd" &&
		ap[1].GetFilename() == "f.bin",
		"client-streaming SendMessageParts: header + part + raw_chunk assembled")

	// Bidirectional: two sends, cancel the slow one, half-close.
	ctx, cancel = call(pairs...)
	session, err := svc.Converse(ctx)
	must(err, "Converse")
	quick := message("quick", nil)
	slow := message("slow", map[string]interface{}{"delay_ms": 30000})
	for _, m := range []*a2av1.Message{quick, slow} {
		must(session.Send(&switchyardv1.ConverseRequest{Request: &switchyardv1.ConverseRequest_Send{
			Send: &a2av1.SendMessageRequest{Message: m},
		}}), "converse send")
	}
	states := map[string]a2av1.TaskState{}
	repliesTo := map[string]bool{}
	slowTask := ""
	for {
		frame, err := session.Recv()
		if err == io.EOF {
			break
		}
		must(err, "converse receive")
		e := frame.GetEvent()
		if e == nil {
			check(false, fmt.Sprintf("bidirectional Converse: every frame is an event, got %v", frame))
		}
		repliesTo[frame.InReplyTo] = true
		if t := e.GetTask(); t != nil {
			states[t.Id] = t.GetStatus().GetState()
			if frame.InReplyTo == slow.MessageId && slowTask == "" {
				slowTask = t.Id
				must(session.Send(&switchyardv1.ConverseRequest{Request: &switchyardv1.ConverseRequest_Cancel{
					Cancel: &a2av1.CancelTaskRequest{Id: slowTask},
				}}), "converse cancel")
				// Half-close: the server finishes the running tasks.
				must(session.CloseSend(), "converse half-close")
			}
		} else if u := e.GetStatusUpdate(); u != nil {
			states[u.TaskId] = u.GetStatus().GetState()
		}
	}
	cancel()
	check(repliesTo[quick.MessageId] && repliesTo[slow.MessageId],
		"bidirectional Converse: frames answer both sends")
	completed := false
	for _, s := range states {
		completed = completed || s == a2av1.TaskState_TASK_STATE_COMPLETED
	}
	check(slowTask != "" && states[slowTask] == a2av1.TaskState_TASK_STATE_CANCELED && completed,
		"bidirectional Converse: quick task COMPLETED, slow task CANCELED, OK after half-close")

	// A2A: SendMessage returning at once, SubscribeToTask to the end, GetTask. The task works for
	// 1.5 s (5 chunks, 300 ms apart), so it is still running when the subscription comes.
	ctx, cancel = call(pairs...)
	started, err := a2a.SendMessage(ctx, &a2av1.SendMessageRequest{
		Message:       message("later", map[string]interface{}{"chunks": 5, "chunk_delay_ms": 300}),
		Configuration: &a2av1.SendMessageConfiguration{ReturnImmediately: true},
	})
	cancel()
	must(err, "A2A SendMessage")
	state := started.GetTask().GetStatus().GetState()
	check(state == a2av1.TaskState_TASK_STATE_SUBMITTED || state == a2av1.TaskState_TASK_STATE_WORKING,
		"A2A SendMessage with return_immediately: the task is still running")
	taskID := started.GetTask().GetId()
	ctx, cancel = call(pairs...)
	sub, err := a2a.SubscribeToTask(ctx, &a2av1.SubscribeToTaskRequest{Id: taskID})
	must(err, "SubscribeToTask")
	events = drain(sub)
	cancel()
	check(events[0].GetTask().GetId() == taskID &&
		events[len(events)-1].GetStatusUpdate().GetStatus().GetState() == a2av1.TaskState_TASK_STATE_COMPLETED,
		"A2A SubscribeToTask: the task first, then events until COMPLETED")
	ctx, cancel = call(pairs...)
	got, err := a2a.GetTask(ctx, &a2av1.GetTaskRequest{Id: taskID})
	cancel()
	must(err, "GetTask")
	echoed := false
	for _, a := range got.GetArtifacts() {
		echoed = echoed || (a.Name == "echo" && a.GetParts()[0].GetText() == "later")
	}
	check(got.GetStatus().GetState() == a2av1.TaskState_TASK_STATE_COMPLETED && echoed,
		"A2A GetTask: COMPLETED with the echo artifact")

	// The contract: a call without a2a-version is refused.
	bare := []string{}
	if agent != "" {
		bare = append(bare, "x-switchyard-agent", agent)
	}
	ctx, cancel = call(bare...)
	_, err = a2a.GetTask(ctx, &a2av1.GetTaskRequest{Id: taskID})
	cancel()
	check(status.Code(err) == codes.FailedPrecondition,
		fmt.Sprintf("a call without a2a-version is refused with FAILED_PRECONDITION (%v)", status.Code(err)))
	fmt.Println("ALL OK")
}

// drain reads a stream of task events to its end.
func drain(s interface {
	Recv() (*a2av1.StreamResponse, error)
}) []*a2av1.StreamResponse {
	var out []*a2av1.StreamResponse
	for {
		e, err := s.Recv()
		if err == io.EOF {
			return out
		}
		must(err, "stream")
		out = append(out, e)
	}
}
