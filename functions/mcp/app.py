"""/mcp: the MCP server over streamable HTTP."""

from mailroom.entry.mcp_http import handler

__all__ = ["handler"]
