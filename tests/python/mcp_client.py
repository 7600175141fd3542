"""Drives Switchyard's MCP server with the official MCP Python SDK (PyPI `mcp`).

Transports: `--stdio CMD ARG…` launches `switchyard mcp` as a desktop client would;
`--http URL` connects to the gateway's streamable HTTP endpoint (`<gateway>/mcp`).

Checks, in order, printing one JSON line per step on stdout (`{"step": …}`):
1. `tools/list` holds `echo.echo` and `research.research-report` with schemas and descriptions;
2. `research.research-report` on `--document` returns the report (text content), with at least
   one progress notification on the way;
3. `echo.echo` with `ask` returns the question and the task id (not an error); calling it again
   with that `task_id` and the answer finishes the task;
4. `echo.echo` with `delay_ms` 60000 is cancelled after 1 s (the SDK sends
   `notifications/cancelled`); the caller checks that the task became CANCELED;
5. with `--await-removal`, prints `{"step": "waiting"}` and waits (at most 60 s) for
   `notifications/tools/list_changed`, after which `tools/list` must have lost every tool of
   the agent named by `--await-removal`.
Exits non-zero (with the reason on stderr) when a check fails.
"""

import argparse
import json
import sys

import anyio
import mcp.types as types
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client


def emit(**fields):
    print(json.dumps(fields), flush=True)


def fail(why):
    print(f"mcp_client: {why}", file=sys.stderr, flush=True)
    sys.exit(1)


async def checks(read, write, args):
    changed = anyio.Event()

    async def on_message(message):
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    async with ClientSession(read, write, message_handler=on_message) as session:
        init = await session.initialize()
        if not init.capabilities.tools or not init.capabilities.tools.list_changed:
            fail(f"the server does not announce tools.listChanged: {init.capabilities}")
        tools = {t.name: t for t in (await session.list_tools()).tools}
        for name in ("echo.echo", "research.research-report"):
            if name not in tools:
                fail(f"tool {name} missing from {sorted(tools)}")
        echo = tools["echo.echo"]
        if "text" not in echo.input_schema.get("properties", {}) or not echo.description:
            fail(f"echo.echo has no text argument or description: {echo}")
        emit(step="tools", tools=sorted(tools))

        document = open(args.document, encoding="utf-8").read()
        progress = []

        async def on_progress(value, total, message):
            progress.append({"progress": value, "total": total, "message": message})

        with anyio.fail_after(120):
            result = await session.call_tool(
                "research.research-report", {"text": document}, progress_callback=on_progress
            )
        if result.is_error:
            fail(f"research failed: {result.content}")
        text = "\n".join(c.text for c in result.content if c.type == "text")
        if not progress:
            fail("no progress notification during research")
        emit(step="research", report=text, progress=progress, structured=result.structured_content)

        asked = await session.call_tool("echo.echo", {"text": "hi", "metadata": {"ask": "Which city?"}})
        task_id = (asked.structured_content or {}).get("task_id")
        if asked.is_error or not task_id or "Which city?" not in asked.content[0].text:
            fail(f"an input-required task should name its question and task id: {asked}")
        answered = await session.call_tool("echo.echo", {"text": "Paris", "task_id": task_id})
        if answered.is_error or answered.content[0].text != "Paris":
            fail(f"answering the task with task_id should finish it: {answered}")
        emit(step="input-required", task_id=task_id)

        with anyio.move_on_after(1):
            await session.call_tool("echo.echo", {"text": "never", "metadata": {"delay_ms": 60000}})
            fail("the 60 s echo returned within 1 s")
        emit(step="cancelled")

        if args.await_removal:
            emit(step="waiting")
            with anyio.fail_after(60):
                await changed.wait()
            left = sorted(t.name for t in (await session.list_tools()).tools)
            gone = [n for n in left if n.startswith(args.await_removal + ".")]
            if gone:
                fail(f"tools of {args.await_removal} still listed after list_changed: {gone}")
            emit(step="changed", tools=left)


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--http")
    p.add_argument("--document", required=True)
    p.add_argument("--await-removal")
    p.add_argument("--stdio", nargs=argparse.REMAINDER)
    args = p.parse_args()
    if args.http:
        async with streamable_http_client(args.http) as (read, write):
            await checks(read, write, args)
    elif args.stdio:
        server = StdioServerParameters(command=args.stdio[0], args=args.stdio[1:])
        async with stdio_client(server) as (read, write):
            await checks(read, write, args)
    else:
        fail("give --http URL or --stdio CMD…")
    emit(step="done")


anyio.run(main)
