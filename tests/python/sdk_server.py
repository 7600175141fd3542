"""An A2A agent written with the official Python SDK (a2a-sdk 1.3.0), gRPC binding only, as a
third-party agent placed behind the Switchyard gateway.

Usage: python sdk_server.py

Serves `lf.a2a.v1.A2AService` over gRPC on a free loopback port, and its agent card over HTTP
on another (for the gateway's registry: `card_url`). Prints one line
`READY grpc=<port> card=http://127.0.0.1:<port>/.well-known/agent-card.json` once both
listen, then serves until killed.

Behaviour by the text of the message:
- `msg:<x>`: a message-only reply `echo: msg:<x>`;
- `slow<x>`: a task that works until canceled;
- anything else: a task WORKING, an artifact `echo: <text>`, COMPLETED.
"""

import asyncio
import socket

import grpc
import uvicorn
from a2a.helpers import new_task_from_user_message, new_text_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler, GrpcHandler
from a2a.server.routes import create_agent_card_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import AgentCapabilities, AgentCard, AgentInterface, AgentSkill, a2a_pb2_grpc
from starlette.applications import Starlette


class Echo(AgentExecutor):
    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        text = context.get_user_input()
        if text.startswith("msg:"):
            reply = new_text_message("echo: " + text, context_id=context.context_id)
            await event_queue.enqueue_event(reply)
            return
        task = context.current_task
        if task is None:
            task = new_task_from_user_message(context.message)
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.start_work()
        if text.startswith("slow"):
            await asyncio.sleep(3600)
            return
        await updater.add_artifact([new_text_part("echo: " + text)], name="echo")
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


async def main():
    server = grpc.aio.server()
    grpc_port = server.add_insecure_port("127.0.0.1:0")
    http = socket.socket()
    http.bind(("127.0.0.1", 0))
    http_port = http.getsockname()[1]
    card = AgentCard(
        name="pyecho",
        description="An echo agent written with the a2a-sdk, gRPC binding",
        version="1.0.0",
        capabilities=AgentCapabilities(streaming=True, push_notifications=False),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="echo", name="echo", description="echo", tags=["echo", "python"])],
        supported_interfaces=[
            AgentInterface(
                url=f"127.0.0.1:{grpc_port}", protocol_binding="GRPC", protocol_version="1.0"
            )
        ],
    )
    handler = DefaultRequestHandler(
        agent_executor=Echo(), task_store=InMemoryTaskStore(), agent_card=card
    )
    a2a_pb2_grpc.add_A2AServiceServicer_to_server(GrpcHandler(handler), server)
    await server.start()
    app = Starlette(routes=create_agent_card_routes(card))
    web = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    serving = asyncio.create_task(web.serve(sockets=[http]))
    while not web.started:
        await asyncio.sleep(0.01)
    print(
        f"READY grpc={grpc_port} "
        f"card=http://127.0.0.1:{http_port}/.well-known/agent-card.json",
        flush=True,
    )
    await serving
    await server.stop(0)


if __name__ == "__main__":
    asyncio.run(main())
