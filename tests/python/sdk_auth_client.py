"""The official A2A Python SDK (a2a-sdk 1.3.0) against a gateway with authentication on.

Usage: python sdk_auth_client.py GATEWAY_URL AGENT BINDING TOKEN
  BINDING is JSONRPC or HTTP+JSON; TOKEN a bearer JWT the gateway accepts.

The card is public and declares the Bearer scheme; with the token in the httpx client's
headers a message completes (unary and streamed); without it the SDK raises its A2A client
error for HTTP 401. Prints one line per check; exits 1 on the first failure.
"""

import asyncio
import sys

import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.client.errors import A2AClientError
from a2a.types import SendMessageRequest, TaskState
from sdk_checks import check, message


async def main(gateway, agent, binding, token):
    base = f"{gateway}/agents/{agent}"
    async with httpx.AsyncClient(timeout=30) as h:
        card = await A2ACardResolver(h, base).get_agent_card()
    check("bearer" in card.security_schemes, "the public card declares the Bearer scheme")
    check(
        card.security_schemes["bearer"].http_auth_security_scheme.scheme == "Bearer",
        "the scheme is HTTP Bearer",
    )

    def client(headers, streaming=False):
        config = ClientConfig(
            streaming=streaming,
            supported_protocol_bindings=[binding],
            httpx_client=httpx.AsyncClient(timeout=30, headers=headers),
        )
        return ClientFactory(config).create(card)

    authed = {"Authorization": f"Bearer {token}"}
    for streaming in (False, True):
        events = [e async for e in client(authed, streaming).send_message(
            SendMessageRequest(message=message("with token")))]
        last = events[-1]
        state = last.task.status.state if last.HasField("task") else (
            last.status_update.status.state if last.HasField("status_update") else None)
        check(state == TaskState.TASK_STATE_COMPLETED,
              f"with a bearer token the task completes (streaming={streaming})")

    for headers, what in (({}, "without a token"), ({"Authorization": "Bearer nope"}, "with a bad token")):
        try:
            [e async for e in client(headers).send_message(
                SendMessageRequest(message=message("anonymous")))]
            check(False, f"{what} the call is refused")
        except A2AClientError as e:
            check("401" in str(e), f"{what}: the SDK raises its client error for 401 ({e})")
    print("ALL OK")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
