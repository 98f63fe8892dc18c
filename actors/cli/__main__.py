"""``python -m actors.cli``: the same as the ``lark-scheduler`` command."""

from __future__ import annotations

from actors.cli import main

raise SystemExit(main())
