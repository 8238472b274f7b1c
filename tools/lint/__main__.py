"""``python -m tools.lint PATH...``: the ``check`` command without the main CLI."""

from tools.lint.cli import main

raise SystemExit(main())
