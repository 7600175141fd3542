"""Python's grpcio as a native gRPC client of agents through the gateway's port.

Usage: python grpc_gateway_client.py http://HOST:PORT   (a gateway in front of the echo agent)

Reads the gRPC address from the gateway's card (its GRPC interface), then calls
lf.a2a.v1.A2AService with the generated stubs of a2a-sdk 1.3.0 (a2a.types.a2a_pb2_grpc),
naming the agent with the `x-switchyard-agent` metadata header: SendMessage (unary),
SendStreamingMessage (server streaming), GetTask, and an unknown agent (NOT_FOUND). Prints one
line per check; exits 1 on the first failure.
"""

import sys

import grpc
import httpx
from a2a.types import a2a_pb2, a2a_pb2_grpc
from sdk_checks import check, message


def main(base):
    card = httpx.get(f"{base}/.well-known/agent-card.json", timeout=30).json()
    grpc_urls = [i["url"] for i in card["supportedInterfaces"] if i["protocolBinding"] == "GRPC"]
    check(len(grpc_urls) == 1 and "/" not in grpc_urls[0],
          "the gateway card names its gRPC address as host:port")
    target = grpc_urls[0]
    metadata = [("x-switchyard-agent", "echo"), ("a2a-version", "1.0")]
    with grpc.insecure_channel(target) as channel:
        stub = a2a_pb2_grpc.A2AServiceStub(channel)

        reply = stub.SendMessage(a2a_pb2.SendMessageRequest(message=message("hello")),
                                 metadata=metadata, timeout=30)
        check(reply.task.status.state == a2a_pb2.TASK_STATE_COMPLETED
              and reply.task.artifacts[0].parts[0].text == "hello", "unary SendMessage echoes")

        events = list(stub.SendStreamingMessage(
            a2a_pb2.SendMessageRequest(message=message("streamed", chunks=3)),
            metadata=metadata, timeout=30))
        kinds = [e.WhichOneof("payload") for e in events]
        check(kinds[0] == "task" and kinds.count("artifact_update") >= 3
              and events[-1].status_update.status.state == a2a_pb2.TASK_STATE_COMPLETED,
              "server streaming carries the task to its end")

        got = stub.GetTask(a2a_pb2.GetTaskRequest(id=reply.task.id), metadata=metadata,
                           timeout=30)
        check(got.id == reply.task.id, "GetTask finds the task")

        try:
            stub.GetTask(a2a_pb2.GetTaskRequest(id="x"),
                         metadata=[("x-switchyard-agent", "nobody"), ("a2a-version", "1.0")],
                         timeout=30)
            check(False, "an unknown agent is refused")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.NOT_FOUND and "nobody" in e.details(),
                  "an unknown agent is NOT_FOUND")
    print("grpcio through the gateway: ok")


if __name__ == "__main__":
    main(sys.argv[1])
