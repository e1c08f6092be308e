"""A ledger directory made once per test module (a demo run, a seal: seconds of real
processes) and copied for each test, which may then change its copy as it likes."""

from __future__ import annotations

import shutil
from pathlib import Path


def copy_into(template: Path, tmp_path: Path) -> Path:
    """Everything in ``template`` (the ledger's ``var/``, keys, files) copied into
    ``tmp_path``; ``tmp_path``."""
    for item in template.iterdir():
        target = tmp_path / item.name
        if item.is_dir():
            shutil.copytree(item, target, symlinks=True)
        else:
            shutil.copy2(item, target)
    return tmp_path
