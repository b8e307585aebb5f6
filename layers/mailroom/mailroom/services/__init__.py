"""Use cases that join domain logic and the store; called by routers, the CLI and the local stack."""
