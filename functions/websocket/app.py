"""The WebSocket API's routes ($connect, $disconnect, subscribe, unsubscribe, $default)."""

from mailroom.entry.websocket import websocket as handler

__all__ = ["handler"]
