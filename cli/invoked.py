"""How this ``ledger`` was run, so that a message naming a next command names it the same way.

After the README's quickstart (``.venv/bin/ledger demo``) ``ledger`` is not on PATH: a hint
that says ``ledger projections run --once`` would not run as printed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path


def invoked_as(
    argv0: str | None = None,
    *,
    cwd: Path | None = None,
    search_path: str | None = None,
    executable: str | None = None,
) -> str:
    """The command, as shell text, that runs ``ledger`` the way this process was run.

    ``argv0`` (default ``sys.argv[0]``) is the script: named ``ledger`` when that name on
    ``search_path`` (default ``PATH``) is this very file; else by its path, relative to
    ``cwd`` (default the working directory) when it lies below it (``.venv/bin/ledger``),
    absolute otherwise. Run as ``python -m cli`` (``argv0`` is ``cli/__main__.py``, or ``-c``
    or empty when embedded), it is the interpreter (``executable``, default
    ``sys.executable``), named the same way, with ``-m cli``."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    here = Path.cwd() if cwd is None else cwd
    if argv0 in ("", "-c") or Path(argv0).name == "__main__.py":
        interpreter = sys.executable if executable is None else executable
        return f"{_runnable(interpreter, here, search_path)} -m cli"
    return _runnable(argv0, here, search_path)


def _runnable(program: str, cwd: Path, search_path: str | None) -> str:
    """``program`` as a shell would run it from ``cwd``: its bare name if PATH finds this
    file under that name, else its path (``./x`` for a file in ``cwd`` itself)."""
    where = Path(os.path.abspath(cwd / program))
    found = shutil.which(where.name, path=search_path)
    if found is not None and where.exists() and os.path.samefile(found, where):
        return where.name
    try:
        relative = str(where.relative_to(cwd))
    except ValueError:
        return shlex.quote(str(where))
    return shlex.quote(relative if "/" in relative else f"./{relative}")
