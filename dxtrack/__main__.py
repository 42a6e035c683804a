"""``python -m dxtrack``: the ``dxtrack`` command."""

from dxtrack.cli import main

main()
