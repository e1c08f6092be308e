"""cli.invoked: a next command is printed as the user ran ``ledger`` (issue 9), with real
files and a real search path."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.invoked import invoked_as


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A checkout with its venv's console script, ``.venv/bin/ledger``."""
    script = tmp_path / "repo" / ".venv" / "bin" / "ledger"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    return tmp_path / "repo"


def test_after_the_quickstart_it_is_the_venvs_script_relative_to_here(project: Path) -> None:
    assert invoked_as(".venv/bin/ledger", cwd=project, search_path="/usr/bin") == (
        ".venv/bin/ledger"
    )
    absolute = str(project / ".venv" / "bin" / "ledger")
    assert invoked_as(absolute, cwd=project, search_path="/usr/bin") == ".venv/bin/ledger"
    assert invoked_as("./.venv/bin/../bin/ledger", cwd=project, search_path="") == (
        ".venv/bin/ledger"
    )


def test_on_path_it_is_its_bare_name(project: Path) -> None:
    absolute = str(project / ".venv" / "bin" / "ledger")
    on_path = f"/usr/bin:{project / '.venv' / 'bin'}"
    assert invoked_as(absolute, cwd=project, search_path=on_path) == "ledger"


def test_another_ledger_on_path_does_not_make_the_bare_name_right(
    project: Path, tmp_path: Path
) -> None:
    other = tmp_path / "elsewhere" / "ledger"
    other.parent.mkdir()
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    absolute = str(project / ".venv" / "bin" / "ledger")
    assert invoked_as(absolute, cwd=project, search_path=str(other.parent)) == (".venv/bin/ledger")


def test_outside_the_working_directory_it_is_the_absolute_path(
    project: Path, tmp_path: Path
) -> None:
    (tmp_path / "work dir").mkdir()
    absolute = str(project / ".venv" / "bin" / "ledger")
    assert invoked_as(absolute, cwd=tmp_path / "work dir", search_path="") == absolute
    spaced = tmp_path / "work dir" / "bin" / "ledger"
    assert invoked_as(str(spaced), cwd=project, search_path="") == f"'{spaced}'"


def test_a_script_in_the_working_directory_itself_keeps_its_dot_slash(project: Path) -> None:
    bin_dir = project / ".venv" / "bin"
    assert invoked_as("ledger", cwd=bin_dir, search_path="") == "./ledger"


def test_python_dash_m_cli_names_the_interpreter(project: Path) -> None:
    python = project / ".venv" / "bin" / "python"
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    main = str(project / "cli" / "__main__.py")
    for argv0 in (main, "-c", ""):
        assert invoked_as(argv0, cwd=project, search_path="", executable=str(python)) == (
            ".venv/bin/python -m cli"
        )
