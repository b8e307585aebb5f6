"""Request and response models of API resources whose routers would be too long with them inline.

They describe exactly what the routes take and answer (the OpenAPI document, client generators
and the MCP server are built from them); views are built by ``services`` and validated against
these models on the way out.
"""
