"""The ledger console (issue 13): server-rendered HTML pages under ``/console`` for auditors,
regulators, admins and services, served by the API's own app.

The console is a FastAPI app of its own mounted at ``/console`` (so its errors are pages, not
problem documents, and the API's route table, api/access.py, stays the API's), sharing the
API app's ``state``: the same ledger, read models, key cache and page-token key. Its pages
call the functions the API's routes call (api/queries.py, replay/, ledger/), never the API
over HTTP, and check roles with the API's own check (api/auth.py ``admit``), per the table in
api/console/access.py. Signing in exchanges an API key for a session cookie
(api/console/session.py).
"""

from __future__ import annotations

from fastapi import FastAPI

from api.console import exports_page as exports
from api.console import integrity, keys, orders, personal, session, status
from api.console.render import install_errors
from api.console.settings import ConsoleSettings


def mount(app: FastAPI, settings: ConsoleSettings) -> None:
    """Mount the console at ``/console`` on ``app``, sharing its state."""
    console = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    console.state = app.state  # the API's ledger, readers, key cache (set by its lifespan)
    app.state.console = settings
    install_errors(console)
    for module in (session, orders, integrity, status, exports, personal, keys):
        console.include_router(module.router)
    app.mount("/console", console)
