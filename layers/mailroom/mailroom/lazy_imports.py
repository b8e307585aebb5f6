"""Modules that code imports on first use instead of at init, declared by the module that defers them.

A function's cold start without SnapStart pays only for what its handler imports; a heavy library
that only some requests need (a template engine, a calendar parser) is imported by the code that
uses it, on first use. With SnapStart that is the wrong trade: whatever init loads is in the
snapshot, free on every restore, while a deferred import is paid again by every restored
environment on its first such request. So the deferring module declares what it defers, here, when
it is itself imported; ``entry.snapstart`` imports every declared module before the snapshot. A
function that never imports the deferring module never declares, and never preloads, its library.

No dependencies: every layer may declare (``mail/``, ``domain/`` included).
"""

from __future__ import annotations

_declared: list[str] = []


def declare(*modules: str) -> None:
    """``modules`` are imported on first use by the caller; load them before a SnapStart snapshot."""
    _declared.extend(m for m in modules if m not in _declared)


def declared() -> tuple[str, ...]:
    return tuple(_declared)
