"""The ``/api/v0`` routers: the agentmail v0 reference (agentmail-v0-api.txt), to the field.

They are views over the same services and store as ``/api/v1``: an inbox is a mailbox, a v0
webhook is a webhook, an API key is an organization-wide token.
"""
