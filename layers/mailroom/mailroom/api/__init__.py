"""The HTTP surface: one FastAPI app per Lambda function, built from that function's routers."""

import sys

# FastAPI refuses pydantic.v1 models by importing ``pydantic.v1`` to compare every route's
# annotations against ``v1.BaseModel`` (and, at run time, objects it cannot encode otherwise): that
# import is 20-40 ms of each API function's cold start, for a compatibility package nothing here
# uses (no model of ours, and no package in the layer, imports it). ``None`` in ``sys.modules`` is
# Python's own "this module is not available": FastAPI catches the ImportError and takes the branch
# it takes under a pydantic without v1, "no v1 model". Set here, in the package every router lives
# in, so it holds before the first route is built. ``setdefault``: a process that has already
# imported pydantic.v1 (a tool, a test helper) keeps it.
sys.modules.setdefault("pydantic.v1", None)  # type: ignore[arg-type]
