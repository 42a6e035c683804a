"""The ``dxtrack`` command: look at recorded errors and metrics, locally or in S3."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command; without the ``cli`` extra, say how to install it."""
    try:
        from dxtrack.cli.app import cli
    except ImportError as exc:
        missing = exc.name or "a module"
        sys.stderr.write(
            f"dxtrack: the command needs the 'cli' extra ({missing} is not installed):\n"
            "    pip install 'dxtrack[cli]'\n"
        )
        raise SystemExit(2) from None
    cli.main(args=list(argv) if argv is not None else None, prog_name="dxtrack")
