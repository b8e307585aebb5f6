"""The MCP server: the low-level ``mcp`` Server whose tools, resources and prompts come from the
API's OpenAPI document, the token's scopes and the gates.

The low-level Server (not MCPServer/FastMCP) because the tools are data, not Python functions:
their names, schemas and descriptions come from the document at run time, and one generic call
path serves them all.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import mcp_types as types
from jsonschema import Draft202012Validator
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server

from mailroom import __version__
from mailroom.mcp_server import agent_tools, gates, resources
from mailroom.mcp_server.client import ApiClient, ApiFailure, Identity
from mailroom.mcp_server.curation import Gate
from mailroom.mcp_server.gates import Flags, Refused
from mailroom.mcp_server.tools import OperationTool, build

INSTRUCTIONS = (
    "Mailroom: email for agents and teams. Tools mirror the Mailroom API. With an ops token or API key, "
    "work with inboxes (create_inbox, list_inbox_messages, reply_to_inbox_message, ...); with a message "
    "token, with its mailbox (list_messages, send_message, ...). wait_for_message blocks until mail "
    "arrives; get_thread_for_reply gives a conversation as quotable text. Writes are safe to retry (each "
    "carries an Idempotency-Key derived from the call). Destructive tools, when offered at all, need a "
    "`confirm` argument equal to their target: ask the user first."
)


_BUILT: dict[int, tuple[dict[str, Any], list[OperationTool]]] = {}


def tools_of(document: dict[str, Any]) -> list[OperationTool]:
    """The tools of a document, built once per document (over HTTP every request builds a server,
    and the document is the same cached one for its max-age). An operation this version does not
    curate is left out rather than offered ungated (``tools.build``)."""
    hit = _BUILT.get(id(document))
    if hit is not None and hit[0] is document:
        return hit[1]
    tools = build(document, strict=False)
    _BUILT.clear()
    _BUILT[id(document)] = (document, tools)
    return tools


@dataclass(frozen=True, slots=True)
class Catalog:
    """What this token may call (``callable``) and what the gates let the server offer (``listed``)."""

    identity: Identity
    callable: dict[str, OperationTool]
    listed: list[OperationTool]
    agent: list[agent_tools.AgentTool]


class MailroomMcp:
    """One server for one API client (one token); ``server()`` is the SDK's Server over it."""

    def __init__(self, api: ApiClient, flags: Flags, *, max_wait: float) -> None:
        self.api = api
        self.flags = flags
        self.max_wait = max_wait
        self._catalog: Catalog | None = None

    async def catalog(self) -> Catalog:
        if self._catalog is None:
            document = await self.api.document()
            identity = await self.api.identity()
            allowed = {tool.name: tool for tool in tools_of(document) if identity.may_call(tool.access)}
            accesses = {(tool.method, tool.path): tool.access for tool in allowed.values()}
            self._catalog = Catalog(
                identity=identity,
                callable=allowed,
                listed=[tool for tool in allowed.values() if self.flags.offers(tool.gate)],
                agent=[tool for tool in agent_tools.agent_tools(self.max_wait) if tool.needs in accesses],
            )
        return self._catalog

    # --- tools ---------------------------------------------------------------------------------

    async def list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        catalog = await self.catalog()
        listed = [_tool_of(tool) for tool in catalog.listed]
        listed += [
            types.Tool(
                name=tool.name,
                title=tool.title,
                description=tool.description,
                input_schema=tool.input_schema,
                output_schema=tool.output_schema,
                annotations=types.ToolAnnotations(
                    title=tool.title, read_only_hint=True, open_world_hint=False
                ),
            )
            for tool in catalog.agent
        ]
        return types.ListToolsResult(tools=listed)

    async def call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        arguments = dict(params.arguments or {})
        try:
            catalog = await self.catalog()
            agent = next((tool for tool in catalog.agent if tool.name == params.name), None)
            if agent is not None:
                _validate(agent.input_schema, arguments)
                return _success(await self._agent_call(catalog.identity, agent.name, arguments))
            tool = catalog.callable.get(params.name)
            if tool is None:
                raise Refused(
                    "unknown_tool",
                    f"No tool named {params.name} for this token.",
                    "List the tools again: only those the token's scopes allow exist.",
                )
            gates.check(self.flags, tool, arguments)
            _validate(tool.input_schema, arguments)
            return _result_of(tool, await self._operation_call(tool, arguments))
        except (ApiFailure, Refused) as error:
            return _error(error)

    async def _agent_call(
        self, identity: Identity, name: str, arguments: Mapping[str, Any]
    ) -> dict[str, Any]:
        if name == "wait_for_message":
            return await agent_tools.wait_for_message(self.api, identity, arguments, self.max_wait)
        return await agent_tools.thread_for_reply(self.api, identity, arguments)

    async def _operation_call(self, tool: OperationTool, arguments: Mapping[str, Any]) -> httpx.Response:
        path = tool.path
        query: dict[str, Any] = {}
        headers: dict[str, str] = {}
        for parameter in tool.parameters:
            value = arguments.get(parameter.name)
            if parameter.location == "path":
                path = path.replace("{" + parameter.name + "}", quote(str(value), safe=""))
            elif value is not None and parameter.location == "query":
                query[parameter.name] = value
            elif value is not None and parameter.location == "header":
                headers[parameter.name] = str(value)
        if tool.mutating:
            headers["Idempotency-Key"] = gates.idempotency_key(tool.name, arguments)
        return await self.api.send(
            tool.method,
            path,
            params=query,
            body=arguments.get("body"),
            headers=headers,
            has_body=tool.has_body,
        )

    # --- resources and prompts -----------------------------------------------------------------

    async def list_resources(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[])  # every resource is addressed by a template

    async def list_resource_templates(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=list(resources.TEMPLATES))

    async def read_resource(
        self, ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        catalog = await self.catalog()
        return await resources.read(self.api, catalog.identity, str(params.uri))

    async def list_prompts(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=list(resources.PROMPTS))

    async def get_prompt(
        self, ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        return resources.prompt(params.name, params.arguments)

    def server(self) -> Server[Any]:
        return Server(
            "mailroom",
            version=__version__,
            title="Mailroom",
            instructions=INSTRUCTIONS,
            on_list_tools=self.list_tools,
            on_call_tool=self.call_tool,
            on_list_resources=self.list_resources,
            on_list_resource_templates=self.list_resource_templates,
            on_read_resource=self.read_resource,
            on_list_prompts=self.list_prompts,
            on_get_prompt=self.get_prompt,
        )


def _tool_of(tool: OperationTool) -> types.Tool:
    return types.Tool(
        name=tool.name,
        title=tool.title,
        description=tool.description,
        input_schema=tool.input_schema,
        output_schema=tool.output_schema,
        annotations=types.ToolAnnotations(
            title=tool.title,
            read_only_hint=tool.gate is Gate.READ,
            destructive_hint=tool.gate is Gate.DESTRUCTIVE,
            idempotent_hint=True,  # reads by nature, writes by their derived Idempotency-Key
            open_world_hint=False,
        ),
    )


def _validate(schema: dict[str, Any], arguments: Mapping[str, Any]) -> None:
    errors = sorted(Draft202012Validator(schema).iter_errors(arguments), key=lambda e: list(e.path))
    if errors:
        problems = "; ".join(
            f"{'/'.join(str(p) for p in error.path) or 'arguments'}: {error.message}" for error in errors[:5]
        )
        raise Refused("invalid_arguments", problems, "Fix the arguments to match the tool's input schema.")


def _success(payload: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(text=json.dumps(payload, ensure_ascii=False))], structured_content=payload
    )


def _result_of(tool: OperationTool, response: httpx.Response) -> types.CallToolResult:
    """A success: JSON as structured content (and text); bytes as an embedded resource."""
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if response.status_code == 204 or not response.content:
        return types.CallToolResult(
            content=[types.TextContent(text=f"Done ({response.status_code}).")],
            structured_content={"status": response.status_code},
        )
    if media == "application/json" or media.endswith("+json"):
        payload = response.json()
        structured = payload if isinstance(payload, dict) else {"result": payload}
        return types.CallToolResult(
            content=[types.TextContent(text=json.dumps(payload, ensure_ascii=False))],
            structured_content=structured,
        )
    uri = f"mailroom://{tool.name}{response.request.url.path}"
    contents: types.TextResourceContents | types.BlobResourceContents
    if media.startswith("text/") or media == "message/rfc822":
        contents = types.TextResourceContents(
            uri=uri, mime_type=media, text=response.content.decode(response.encoding or "utf-8", "replace")
        )
    else:
        contents = types.BlobResourceContents(
            uri=uri,
            mime_type=media or "application/octet-stream",
            blob=base64.b64encode(response.content).decode(),
        )
    return types.CallToolResult(
        content=[types.EmbeddedResource(resource=contents)],
        structured_content={"content_type": media, "size": len(response.content)},
    )


def _error(error: ApiFailure | Refused) -> types.CallToolResult:
    """An error the model can act on: the API's (or the gate's) code, message and hint."""
    detail = error.as_dict()
    text = f"{detail['code']}: {detail['message']}"
    if detail.get("hint"):
        text += f"\nHint: {detail['hint']}"
    return types.CallToolResult(
        content=[types.TextContent(text=text)], structured_content={"error": detail}, is_error=True
    )
