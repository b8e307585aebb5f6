"""Field types shared by the resource schemas."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

# Timestamps stay the strings the services write (``2025-01-15T10:30:00.000Z``, always UTC with
# milliseconds): parsing them into datetimes would re-serialize them in another shape.
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
