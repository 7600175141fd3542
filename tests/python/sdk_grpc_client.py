"""The official A2A Python SDK (a2a-sdk 1.3.0) as a client of an agent's gRPC port.

Usage: python sdk_grpc_client.py HOST:PORT   (the echo agent)

Discovers the agent card at http://HOST:PORT/.well-known/agent-card.json, builds the SDK's
gRPC client from it, and runs send (blocking), stream, get, list, cancel, subscribe and a
message reply, checking each result against the A2A v1.0 rules. Prints one line per check; exits 1 on the
first failure.
"""

import asyncio
import sys

import grpc
import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    SendMessageRequest,
    SubscribeToTaskRequest,
    TaskState,
)
from a2a.utils.errors import TaskNotCancelableError, TaskNotFoundError
from sdk_checks import (
    check,
    message,
    message_replies_store_no_task,
    subscription_follows_a_waiting_task,
)


async def main(addr):
    async with httpx.AsyncClient(timeout=30) as h:
        card = await A2ACardResolver(h, f"http://{addr}").get_agent_card()
    check(card.name == "echo", "card discovered at the well-known URL")
    check(card.supported_interfaces[0].protocol_binding == "GRPC"
          and card.supported_interfaces[0].url == addr, "card advertises the gRPC interface")

    def client(streaming, polling=False):
        config = ClientConfig(
            streaming=streaming,
            polling=polling,
            supported_protocol_bindings=["GRPC"],
            grpc_channel_factory=grpc.aio.insecure_channel,
        )
        return ClientFactory(config).create(card)

    unary, streaming, polling = client(False), client(True), client(False, polling=True)

    # send (blocking)
    events = [e async for e in unary.send_message(SendMessageRequest(message=message("hello")))]
    check(len(events) == 1 and events[0].HasField("task"), "send returns one task")
    task = events[0].task
    check(task.status.state == TaskState.TASK_STATE_COMPLETED, "send completes the task")
    check(task.artifacts[0].parts[0].text == "hello", "the artifact echoes the text")

    # stream
    events = [e async for e in streaming.send_message(
        SendMessageRequest(message=message("streamed", chunks=3)))]
    kinds = [e.WhichOneof("payload") for e in events]
    check(kinds[0] == "task", "stream starts with the task")
    check(kinds.count("artifact_update") == 4, "stream carries 3 chunks and the echo artifact")
    check(events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED,
          "stream ends with COMPLETED")

    # get
    got = await unary.get_task(GetTaskRequest(id=task.id, history_length=0))
    check(got.id == task.id and len(got.history) == 0
          and got.status.state == TaskState.TASK_STATE_COMPLETED, "get honours history_length=0")

    # list, two pages
    page1 = await unary.list_tasks(ListTasksRequest(page_size=1))
    check(page1.total_size == 2 and len(page1.tasks) == 1 and page1.next_page_token,
          "list pages by 1 with a next token")
    page2 = await unary.list_tasks(ListTasksRequest(page_size=1, page_token=page1.next_page_token))
    check({page1.tasks[0].id, page2.tasks[0].id} == {task.id, events[0].task.id}
          and page2.next_page_token == "", "the second page ends the list")

    # a slow task, subscribed to, then canceled
    events = [e async for e in polling.send_message(
        SendMessageRequest(message=message("slow", delay_ms=20000)))]
    slow = events[0].task
    check(slow.status.state == TaskState.TASK_STATE_SUBMITTED, "polling send returns at once")
    sub = streaming.subscribe(SubscribeToTaskRequest(id=slow.id))
    first = await sub.__anext__()
    check(first.HasField("task") and first.task.id == slow.id, "subscribe starts with the task")
    canceled = await unary.cancel_task(CancelTaskRequest(id=slow.id))
    check(canceled.status.state == TaskState.TASK_STATE_CANCELED, "cancel returns CANCELED")
    rest = [e async for e in sub]
    check(rest and rest[-1].status_update.status.state == TaskState.TASK_STATE_CANCELED,
          "the subscription ends with CANCELED")

    # A2A errors map to the SDK's exception classes
    try:
        await unary.get_task(GetTaskRequest(id="no-such-task"))
        check(False, "get of an unknown task fails")
    except TaskNotFoundError:
        check(True, "unknown task -> TaskNotFoundError")
    try:
        await unary.cancel_task(CancelTaskRequest(id=slow.id))
        check(False, "second cancel fails")
    except TaskNotCancelableError:
        check(True, "second cancel -> TaskNotCancelableError")
    await subscription_follows_a_waiting_task(unary, streaming)
    await message_replies_store_no_task(unary, streaming, tasks_before=4)
    print("ALL OK")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
