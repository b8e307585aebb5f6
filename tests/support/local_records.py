"""What the local-stack fixture functions recorded (``$LOCAL_FIXTURE_RECORDS/<function>.jsonl``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_records(path: Path) -> list[Any]:
    """Every whole line of ``path`` as JSON. A line without its newline yet is still being written
    by a function running at this moment (a long line is written in several chunks): it is left
    for the next read."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines(keepends=True) if line.endswith("\n")]
