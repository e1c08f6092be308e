"""``python -m cli`` runs the same command as the ``ledger`` script."""

from __future__ import annotations

from cli import main

raise SystemExit(main())
