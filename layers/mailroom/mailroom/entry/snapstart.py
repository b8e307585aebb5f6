"""SnapStart's runtime hooks: what runs once before Lambda snapshots an initialised environment, and
what every environment resumed from that snapshot re-initialises (docs/snapstart.md).

With SnapStart, Lambda runs a published version's init once, snapshots the memory of the process,
and resumes every new execution environment of that version from the same snapshot. Whatever the
process holds at the snapshot is then shared by all of them:

- ``random``'s generator state: every environment would draw the same retry jitter (store/retry,
  store/table), which is what jitter exists to avoid. It is reseeded from the OS after a restore.
  Ids (``mailroom.ids``), tokens and secrets come from ``secrets``, i.e. the kernel's generator,
  which the microVM reseeds on restore: they need nothing here, and the test that simulates two
  restores checks that ids still differ.
- per-environment caches: AWS clients (credentials, connection pools), token lookups, settings.
  None is built during init (nothing reads the environment at import time), but they are dropped
  after a restore all the same, so that a future change which warms one during init cannot leak it
  into every environment.

Before the snapshot, the part of building an AWS client that is the same everywhere (importing
boto3, reading the DynamoDB model and endpoint rules) is done once (``store.aws.prime``), so the
first invoke of a restored environment does not pay for it; it makes no request and holds no
credentials. So are the imports deferred to first use (an entry module's ``preload``, a library's
``lazy_imports.declare``): deferred, they keep a cold start without SnapStart short; with it, they
are better in the snapshot.

The hooks are registered with ``snapshot_restore_py``, the library Lambda's Python runtimes ship
and run the hooks of (before the snapshot in reverse order of registration, after a restore in
order). It is not in the layer: a second copy there would shadow the runtime's own registry.
Where it is missing (the local stack, tests, the benches) nothing is registered: there is no
snapshot to restore from.
"""

from __future__ import annotations

import functools
import random

from mailroom import lazy_imports


def preload(*modules: str) -> None:
    """Name modules the handler imports on its first event, to import before the snapshot instead."""
    lazy_imports.declare(*modules)


def before_snapshot() -> None:
    """Once, after init and before Lambda takes the snapshot."""
    import importlib

    from mailroom.store import aws

    for module in lazy_imports.declared():
        importlib.import_module(module)
    aws.prime("dynamodb")  # every function reads or writes the table


def after_restore() -> None:
    """In every execution environment resumed from the snapshot, before its first invoke."""
    from mailroom import auth
    from mailroom.settings import get_settings
    from mailroom.store import aws

    random.seed()  # from os.urandom: a generator of this environment's own
    aws.reset_clients()
    auth.forget_all()
    get_settings.cache_clear()


@functools.cache  # once per process: the runtime would run a hook registered twice twice
def register() -> bool:
    """Register the hooks with Lambda's runtime; False where there is no runtime support (not on
    Lambda)."""
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:
        return False
    register_before_snapshot(before_snapshot)
    register_after_restore(after_restore)
    return True
