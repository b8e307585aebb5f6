"""Mailroom's MCP server: every API operation as a tool for AI agents, with safety gates.

It is a client of the HTTP API (``client.py``): tools come from the running API's OpenAPI document
(``tools.py``) with curated names and descriptions (``curation.py``), are offered by the token's
scopes and the gates (``gates.py``), and are joined by agent conveniences (``agent_tools.py``),
resources and prompts (``resources.py``). Transports: stdio and stateless streamable HTTP
(``transports.py``). It never imports the API, services or store: see the import contract.
"""
