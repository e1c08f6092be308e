"""``python -m ledger.cli`` runs the same command as the ``ledger`` script."""

from __future__ import annotations

from ledger.cli import main

raise SystemExit(main())
