"""The official A2A Python SDK (a2a-sdk 1.3.0) as a client of the Switchyard gateway.

Usage: python sdk_gateway_client.py GATEWAY_URL AGENT BINDING
  BINDING is JSONRPC or HTTP+JSON; AGENT is the echo agent's name in the gateway.

Discovers the agent's card at GATEWAY_URL/agents/AGENT/.well-known/agent-card.json, builds the
SDK client for BINDING from it, and runs send (blocking), stream, get, list, cancel,
subscribe and a message reply, checking each result against the A2A v1.0 rules, then the mapping of A2A errors to
the SDK's exceptions. Prints one line per check; exits 1 on the first failure.
"""

import asyncio
import sys

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


async def main(gateway, agent, binding):
    base = f"{gateway}/agents/{agent}"
    async with httpx.AsyncClient(timeout=30) as h:
        card = await A2ACardResolver(h, base).get_agent_card()
    check(card.name == agent, "card discovered through the gateway")
    urls = {i.protocol_binding: i.url for i in card.supported_interfaces}
    check(urls.get(binding) == base, f"card advertises {binding} at the gateway")

    def client(streaming, polling=False):
        config = ClientConfig(
            streaming=streaming,
            polling=polling,
            supported_protocol_bindings=[binding],
            httpx_client=httpx.AsyncClient(timeout=30),
        )
        return ClientFactory(config).create(card)

    unary, streaming, polling = client(False), client(True), client(False, polling=True)

    events = [e async for e in unary.send_message(SendMessageRequest(message=message("hello")))]
    check(len(events) == 1 and events[0].HasField("task"), "send returns one task")
    task = events[0].task
    check(task.status.state == TaskState.TASK_STATE_COMPLETED, "send completes the task")
    check(task.artifacts[0].parts[0].text == "hello", "the artifact echoes the text")

    events = [e async for e in streaming.send_message(
        SendMessageRequest(message=message("streamed", chunks=3)))]
    kinds = [e.WhichOneof("payload") for e in events]
    check(kinds[0] == "task", "stream starts with the task")
    check(kinds.count("artifact_update") == 4, "stream carries 3 chunks and the echo artifact")
    check(events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED,
          "stream ends with COMPLETED")

    got = await unary.get_task(GetTaskRequest(id=task.id, history_length=0))
    check(got.id == task.id and len(got.history) == 0
          and got.status.state == TaskState.TASK_STATE_COMPLETED, "get honours history_length=0")

    page1 = await unary.list_tasks(ListTasksRequest(page_size=1))
    check(page1.total_size == 2 and len(page1.tasks) == 1 and page1.next_page_token,
          "list pages by 1 with a next token")
    page2 = await unary.list_tasks(ListTasksRequest(page_size=1, page_token=page1.next_page_token))
    check({page1.tasks[0].id, page2.tasks[0].id} == {task.id, events[0].task.id}
          and page2.next_page_token == "", "the second page ends the list")
    done = await unary.list_tasks(ListTasksRequest(status=TaskState.TASK_STATE_COMPLETED))
    check(done.total_size == 2, "list filters by status")

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
    for c in (unary, streaming, polling):
        await c.close()
    print("ALL OK")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
