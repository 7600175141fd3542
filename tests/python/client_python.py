"""The generated Python client (clients/python, package `switchyard-client`) against an agent.

Usage: python client_python.py HOST:PORT [AGENT]

HOST:PORT is an agent's gRPC port, or the gateway's port with AGENT naming the agent (sent as
`x-switchyard-agent` metadata). Runs the four AgentService call kinds (unary SendMessage,
server-streaming SendStreamingMessage, client-streaming SendMessageParts, bidirectional
Converse with a cancel and a half-close), A2A SendMessage / SubscribeToTask / GetTask, a call
without `a2a-version` (refused), and grpc.health.v1 Check, against the echo agent. Prints one line per check and `ALL OK` at the end; exits 1 on the first failure.
"""

import queue
import sys
import uuid

import grpc
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from lf.a2a.v1 import a2a_pb2, a2a_pb2_grpc
from switchyard.v1 import agent_pb2, agent_pb2_grpc

TIMEOUT = 30  # seconds, every call's deadline (sent as grpc-timeout)
State = a2a_pb2.TaskState


def check(ok, what):
    if not ok:
        print(f"FAIL: {what}", flush=True)
        sys.exit(1)
    print(f"ok: {what}", flush=True)


def message(text, **metadata):
    meta = struct_pb2.Struct()
    meta.update(metadata)
    return a2a_pb2.Message(
        message_id=str(uuid.uuid4()),
        role=a2a_pb2.ROLE_USER,
        parts=[a2a_pb2.Part(text=text)],
        metadata=meta,
    )


def main(target, agent):
    md = [("a2a-version", "1.0")]
    if agent:
        md.append(("x-switchyard-agent", agent))
    with grpc.insecure_channel(target) as channel:
        svc = agent_pb2_grpc.AgentServiceStub(channel)
        a2a = a2a_pb2_grpc.A2AServiceStub(channel)

        health = health_pb2_grpc.HealthStub(channel)
        r = health.Check(health_pb2.HealthCheckRequest(service=""), metadata=md, timeout=TIMEOUT)
        check(r.status == health_pb2.HealthCheckResponse.SERVING, "health: SERVING")

        # Unary.
        r = svc.SendMessage(a2a_pb2.SendMessageRequest(message=message("hello")),
                            metadata=md, timeout=TIMEOUT)
        check(r.WhichOneof("payload") == "task"
              and r.task.status.state == State.TASK_STATE_COMPLETED
              and r.task.artifacts[0].parts[0].text == "hello",
              "unary SendMessage: COMPLETED, the artifact echoes the text")

        # Server streaming.
        events = list(svc.SendStreamingMessage(
            a2a_pb2.SendMessageRequest(message=message("streamed", chunks=3)),
            metadata=md, timeout=TIMEOUT))
        kinds = [e.WhichOneof("payload") for e in events]
        check(kinds[0] == "task" and kinds.count("artifact_update") == 4
              and events[-1].status_update.status.state == State.TASK_STATE_COMPLETED,
              "server-streaming SendStreamingMessage: task, 3 chunks + echo artifact, COMPLETED")

        # Client streaming: header, then a raw part, then a chunk appended to it.
        head = message("head")
        frames = [
            agent_pb2.SendMessagePartsRequest(header=a2a_pb2.SendMessageRequest(message=head)),
            agent_pb2.SendMessagePartsRequest(part=a2a_pb2.Part(
                raw=b"ab", filename="f.bin", media_type="application/octet-stream")),
            agent_pb2.SendMessagePartsRequest(raw_chunk=b"cd"),
        ]
        r = svc.SendMessageParts(iter(frames), metadata=md, timeout=TIMEOUT)
        parts = r.task.artifacts[0].parts
        check(r.task.status.state == State.TASK_STATE_COMPLETED and len(parts) == 2
              and parts[0].text == "head" and parts[1].raw == b"abcd"
              and parts[1].filename == "f.bin",
              "client-streaming SendMessageParts: header + part + raw_chunk assembled")

        # Bidirectional: two sends, cancel the slow one, half-close.
        requests = queue.Queue()
        quick, slow = message("quick"), message("slow", delay_ms=30000)
        requests.put(agent_pb2.ConverseRequest(send=a2a_pb2.SendMessageRequest(message=quick)))
        requests.put(agent_pb2.ConverseRequest(send=a2a_pb2.SendMessageRequest(message=slow)))

        def outgoing():
            while (item := requests.get()) is not None:
                yield item

        states, replies_to, slow_task = {}, set(), None
        for frame in svc.Converse(outgoing(), metadata=md, timeout=TIMEOUT):
            if frame.WhichOneof("payload") != "event":
                check(False, f"bidirectional Converse: every frame is an event, got {frame}")
            replies_to.add(frame.in_reply_to)
            e = frame.event
            if e.WhichOneof("payload") == "task":
                states[e.task.id] = e.task.status.state
                if frame.in_reply_to == slow.message_id and slow_task is None:
                    slow_task = e.task.id
                    requests.put(agent_pb2.ConverseRequest(
                        cancel=a2a_pb2.CancelTaskRequest(id=slow_task)))
                    requests.put(None)  # half-close: the server finishes the running tasks
            elif e.WhichOneof("payload") == "status_update":
                states[e.status_update.task_id] = e.status_update.status.state
        check(replies_to >= {quick.message_id, slow.message_id},
              "bidirectional Converse: frames answer both sends")
        check(states.get(slow_task) == State.TASK_STATE_CANCELED
              and State.TASK_STATE_COMPLETED in states.values(),
              "bidirectional Converse: quick task COMPLETED, slow task CANCELED, OK after half-close")

        # A2A: SendMessage returning at once, SubscribeToTask to the end, GetTask. The task works
        # for 1.5 s (5 chunks, 300 ms apart), so it is still running when the subscription comes.
        r = a2a.SendMessage(a2a_pb2.SendMessageRequest(
            message=message("later", chunks=5, chunk_delay_ms=300),
            configuration=a2a_pb2.SendMessageConfiguration(return_immediately=True)),
            metadata=md, timeout=TIMEOUT)
        task_id = r.task.id
        check(r.task.status.state in (State.TASK_STATE_SUBMITTED, State.TASK_STATE_WORKING),
              "A2A SendMessage with return_immediately: the task is still running")
        events = list(a2a.SubscribeToTask(a2a_pb2.SubscribeToTaskRequest(id=task_id),
                                          metadata=md, timeout=TIMEOUT))
        check(events[0].WhichOneof("payload") == "task" and events[0].task.id == task_id
              and events[-1].status_update.status.state == State.TASK_STATE_COMPLETED,
              "A2A SubscribeToTask: the task first, then events until COMPLETED")
        task = a2a.GetTask(a2a_pb2.GetTaskRequest(id=task_id), metadata=md, timeout=TIMEOUT)
        check(task.status.state == State.TASK_STATE_COMPLETED
              and any(a.name == "echo" and a.parts[0].text == "later" for a in task.artifacts),
              "A2A GetTask: COMPLETED with the echo artifact")

        # The contract: a call without a2a-version is refused.
        try:
            a2a.GetTask(a2a_pb2.GetTaskRequest(id=task_id),
                        metadata=[m for m in md if m[0] != "a2a-version"], timeout=TIMEOUT)
            check(False, "a call without a2a-version is refused")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.FAILED_PRECONDITION,
                  f"a call without a2a-version is refused with FAILED_PRECONDITION ({e.code()})")
    print("ALL OK", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
