"""The console's settings: how long a session lasts. Where the signing key, the log's name
and export bags are is the API's (``ApiSettings``, app.state.exports), one setting each."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_SESSION_S = 3600.0  # one hour from sign-in, then sign in again


@dataclass(frozen=True)
class ConsoleSettings:
    """``session_s``: a session's lifetime in seconds from sign-in (absolute, not sliding)."""

    session_s: float = DEFAULT_SESSION_S
