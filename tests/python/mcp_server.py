"""An MCP server written with the official MCP Python SDK (PyPI `mcp`), run over stdio:
Switchyard wraps it as one mesh agent whose skills are these tools."""

from mcp.server.mcpserver import MCPServer

server = MCPServer("wordtools")


@server.tool()
def count_words(text: str) -> str:
    """Counts the words of a text."""
    return f"{len(text.split())} words"


@server.tool()
def reverse(text: str) -> str:
    """Reverses a text."""
    return text[::-1]


if __name__ == "__main__":
    server.run("stdio")
