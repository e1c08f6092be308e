"""The HTTP API (FastAPI): commands and queries for backend services, reads for auditors and
regulators, keys for admins. ``api.app.create_app`` builds it; ``ledger serve`` runs it."""
