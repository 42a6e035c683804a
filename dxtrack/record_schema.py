"""The JSON Schemas of both record kinds, shipped in the package (``dxtrack/schemas/``)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from dxtrack.events import KINDS


@cache
def load_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``error`` or ``metric`` records."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    text = (resources.files("dxtrack") / "schemas" / f"{kind}.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema
