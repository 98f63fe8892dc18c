"""``python -m bench``."""

from __future__ import annotations

from bench._cli import main

raise SystemExit(main())
