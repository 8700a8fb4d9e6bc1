"""``python -m mailcase``: the same as the ``mailcase`` command."""

from mailcase.cli import main

raise SystemExit(main())
