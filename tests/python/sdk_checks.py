"""Checks shared by the a2a-sdk client scripts (sdk_grpc_client.py over gRPC,
sdk_gateway_client.py through the gateway): the same A2A rules hold on every binding.
"""

import sys
import uuid

from a2a.types import (
    ListTasksRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
    SubscribeToTaskRequest,
    TaskState,
)


def check(cond, what):
    """Prints `ok: what`, or `FAIL: what` and exits 1."""
    if not cond:
        print(f"FAIL: {what}")
        sys.exit(1)
    print(f"ok: {what}")


def message(text, **metadata):
    """A user message with a fresh id, one text part and `metadata` (echo's switches)."""
    m = Message(message_id=str(uuid.uuid4()), role=Role.ROLE_USER, parts=[Part(text=text)])
    if metadata:
        m.metadata.update(metadata)
    return m


async def subscription_follows_a_waiting_task(unary, streaming):
    """A subscriber of an INPUT_REQUIRED task sees the continuation and the end (A2A §3.1.6)."""
    events = [e async for e in unary.send_message(
        SendMessageRequest(message=message("wait", ask="Who?")))]
    waiting = events[0].task
    check(waiting.status.state == TaskState.TASK_STATE_INPUT_REQUIRED, "ask makes INPUT_REQUIRED")
    sub = streaming.subscribe(SubscribeToTaskRequest(id=waiting.id))
    first = await sub.__anext__()
    check(first.HasField("task") and first.task.id == waiting.id,
          "subscribe to a waiting task starts with the task")
    answer = message("Ada")
    answer.task_id = waiting.id
    [e async for e in unary.send_message(SendMessageRequest(message=answer))]
    rest = [e async for e in sub]
    check(rest and rest[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
          and any(e.HasField("artifact_update") for e in rest),
          "the subscription carries the continuation and ends with COMPLETED")


async def message_replies_store_no_task(unary, streaming, tasks_before):
    """echo's reply=message: exactly one message, sent and streamed, and no task stored
    (`tasks_before` is the number of tasks the script made so far)."""
    for c, how in ((unary, "send"), (streaming, "stream")):
        events = [e async for e in c.send_message(
            SendMessageRequest(message=message(f"direct {how}", reply="message")))]
        check(len(events) == 1 and events[0].HasField("message"),
              f"{how}: a message reply is exactly one message")
        m = events[0].message
        check(m.role == Role.ROLE_AGENT and m.parts[0].text == f"direct {how}" and not m.task_id,
              f"{how}: the agent's message echoes the text, with no task")
    listed = await unary.list_tasks(ListTasksRequest())
    check(listed.total_size == tasks_before, "message replies store no task")
