"""The dashboard's page, served as files (``dxtrack ui``) or as one self-contained HTML file with
its style, script and data inlined (``dxtrack report``)."""

from __future__ import annotations

import re
from importlib.resources import files
from typing import Any

import orjson

STATIC = files("dxtrack.dashboard").joinpath("static")
CONTENT_TYPES = {
    "app.js": "text/javascript",
    "style.css": "text/css",
    "index.html": "text/html",
}


def static(name: str) -> str:
    """One of the page's files."""
    return STATIC.joinpath(name).read_text(encoding="utf-8")


def _replace(page: str, marker: str, content: str) -> str:
    pattern = re.compile(f"<!--{marker}-->.*?<!--/{marker}-->", re.DOTALL)
    return pattern.sub(lambda _: content, page, count=1)


def script_json(data: Any) -> str:
    """JSON that can sit inside a ``<script>`` element: ``<``, ``>`` and ``&`` are escaped, so
    no text from a record can close the element."""
    text = orjson.dumps(data, default=str).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def standalone(data: Any) -> str:
    """The page with its style, its script and ``data`` inlined: opens offline, from a file."""
    page = static("index.html")
    style = static("style.css")
    script = static("app.js").replace("</", "<\\/")
    page = _replace(page, "STYLE", f"<style>\n{style}</style>")
    embedded = f'<script type="application/json" id="dxtrack-snapshot">{script_json(data)}</script>'
    page = _replace(page, "DATA", embedded)
    return _replace(page, "SCRIPT", f"<script>\n{script}</script>")
