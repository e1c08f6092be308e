"""``ledger import`` never echoes input in its report or in the rejects file's annotations
(issue 8, case 14). The rejects file keeps each rejected line's original command: that is its
purpose, so only the annotations (code, clause, message, field) are scanned there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from tests import builders
from tests.e2e.test_import_cli import ledger
from tests.pii_inputs import (
    ADDRESS,
    NAME,
    PHONE,
    commands_with_personal_data,
    echoed,
    rule_steps,
)

ORIGINAL = {"command", "raw"}


def lines_with_personal_data() -> list[bytes]:
    """Every generated position, the rules' identifiers, an ``at`` and broken JSON."""
    setup = [builders.submit("O-1"), builders.pay("O-1")]
    generated = [command for _, command in commands_with_personal_data("O-1")]
    rules = [command for command, _ in rule_steps(datetime(2026, 1, 1, tzinfo=UTC))]
    odd = [
        {**builders.order_cmd("cancel_order", "O-9"), "at": f"{NAME} {PHONE}"},
        {**builders.order_cmd("cancel_order", "O-9"), "at": 13812345678},
    ]
    lines = [orjson.dumps(c) for c in [*setup, *generated, *rules, *odd]]
    return [*lines, f'{{"type": "{NAME}", "{PHONE}": "{ADDRESS}"'.encode()]


def import_lines(tmp_path: Path, *options: str) -> tuple[str, list[dict[str, Any]]]:
    (tmp_path / "pii.jsonl").write_bytes(b"\n".join(lines_with_personal_data()) + b"\n")
    run = ledger(tmp_path, "import", "pii.jsonl", "--no-progress", *options)
    assert run.returncode == 1, run.stderr
    rejects = (tmp_path / "pii.rejects.jsonl").read_bytes().splitlines()
    return run.stdout + run.stderr, [orjson.loads(line) for line in rejects]


def annotations(entry: dict[str, Any]) -> list[str]:
    return [str(value) for key, value in entry.items() if key not in ORIGINAL]


def test_the_json_report_and_the_rejects_annotations_echo_no_input(tmp_path: Path) -> None:
    output, entries = import_lines(tmp_path, "--json")

    report = orjson.loads(output.splitlines()[0])
    assert report["rejected"] == len(entries) > 400
    assert not echoed([output])
    assert [entry["line"] for entry in entries if echoed(annotations(entry))] == []
    assert any(PHONE in orjson.dumps(entry["command"]).decode() for entry in entries), (
        "the original line is kept for fixing"
    )


def test_the_plain_report_and_its_rejected_lines_on_stderr_echo_no_input(tmp_path: Path) -> None:
    output, _ = import_lines(tmp_path)

    assert "rejected line" in output
    assert not echoed([output])
