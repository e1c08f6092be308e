"""``ledger import`` through a subprocess: exit codes, ``--json``, the rejects file (SQLite)."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests import builders as b

LEDGER = Path(sys.executable).with_name("ledger")
TIMEOUT_S = 120


def ledger(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The console script in ``cwd`` with the default settings (SQLite under ./var)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    return subprocess.run(
        [str(LEDGER), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def write(path: Path, lines: list[Any]) -> Path:
    path.write_bytes(
        b"".join((x.encode() if isinstance(x, str) else orjson.dumps(x)) + b"\n" for x in lines)
    )
    return path


def good_lines() -> list[dict[str, Any]]:
    return [
        {**b.submit("CLI-1"), "at": "2026-01-05T10:00:00+08:00"},
        {**b.pay("CLI-1"), "at": "2026-01-05T10:03:00+08:00"},
        {**b.ship("CLI-1"), "at": "2026-01-06T09:00:00+08:00"},
    ]


def test_a_clean_file_exits_0_and_json_reports_it(tmp_path: Path) -> None:
    write(tmp_path / "good.jsonl", good_lines())
    run = ledger(tmp_path, "import", "good.jsonl", "--json", "--batch-size", "2")
    assert run.returncode == 0, run.stderr
    report = orjson.loads(run.stdout)
    assert report["lines_read"] == 3
    assert (report["imported"], report["already_imported"], report["rejected"]) == (3, 0, 0)
    assert report["events_written"] > 3 and report["events_per_s"] > 0
    assert report["rejects_file"] is None
    assert not (tmp_path / "good.rejects.jsonl").exists()

    again = ledger(tmp_path, "import", "good.jsonl", "--json")
    assert again.returncode == 0, again.stderr
    rerun = orjson.loads(again.stdout)
    assert (rerun["imported"], rerun["already_imported"], rerun["events_written"]) == (0, 3, 0)


def test_rejected_lines_exit_1_and_go_to_a_private_rejects_file(tmp_path: Path) -> None:
    bad = {**b.submit("CLI-2", shipping_region="CN-HK"), "at": "2026-01-05T11:00:00+08:00"}
    write(tmp_path / "mixed.jsonl", [*good_lines(), "not json", bad])
    run = ledger(tmp_path, "import", "mixed.jsonl")
    assert run.returncode == 1, run.stderr
    assert "imported          3" in run.stdout
    assert "line 4: INVALID_JSON" in run.stderr
    assert "line 5: OUTSIDE_MAINLAND (3.3.3)" in run.stderr
    assert "王小明" not in run.stderr + run.stdout, "no personal data in the report"

    rejects = tmp_path / "mixed.rejects.jsonl"
    assert stat.S_IMODE(rejects.stat().st_mode) == 0o600
    entries = [orjson.loads(line) for line in rejects.read_bytes().splitlines()]
    assert [(e["line"], e["code"]) for e in entries] == [
        (4, "INVALID_JSON"),
        (5, "OUTSIDE_MAINLAND"),
    ]
    assert entries[1]["command"] == bad


def test_the_summary_gives_each_code_and_its_count_apart(tmp_path: Path) -> None:
    """``TRANSACTION_NOT_COMPLETE`` is as wide as the column was: it ran into its count."""
    incomplete = {**b.order_cmd("complete_transaction", "CLI-1"), "at": good_lines()[1]["at"]}
    write(tmp_path / "codes.jsonl", [good_lines()[0], incomplete, "not json"])
    run = ledger(tmp_path, "import", "codes.jsonl", "--no-progress")
    assert run.returncode == 1, run.stderr
    by_code = [line for line in run.stdout.splitlines() if line.startswith("  ")]
    counts = [re.fullmatch(r"  ([A-Z_]+) +(\d+)", line) for line in by_code]
    assert all(counts), by_code
    assert {m.group(1): int(m.group(2)) for m in counts if m} == {
        "INVALID_JSON": 1,
        "TRANSACTION_NOT_COMPLETE": 1,
    }


def test_json_summary_counts_rejections_per_code(tmp_path: Path) -> None:
    write(tmp_path / "bad.jsonl", ["[]", "{", {"type": "nope", "command_id": "x"}])
    run = ledger(tmp_path, "import", "bad.jsonl", "--json", "--rejects", "r.jsonl")
    assert run.returncode == 1, run.stderr
    report = orjson.loads(run.stdout)
    assert report["rejected_by_code"] == {"INVALID_COMMAND": 2, "INVALID_JSON": 1}
    assert report["rejects_file"] == "r.jsonl"
    assert len((tmp_path / "r.jsonl").read_bytes().splitlines()) == 3


def test_an_unreadable_file_or_bad_arguments_exit_2(tmp_path: Path) -> None:
    missing = ledger(tmp_path, "import", "missing.jsonl")
    assert missing.returncode == 2
    assert missing.stderr == "ledger: IO_ERROR: missing.jsonl: No such file or directory\n"
    assert not (tmp_path / "var").exists(), "no database made for nothing"
    (tmp_path / "a-directory").mkdir()
    directory = ledger(tmp_path, "import", "a-directory")
    assert directory.returncode == 2
    assert directory.stderr == "ledger: IO_ERROR: a-directory: Is a directory\n"
    assert not (tmp_path / "var").exists()

    write(tmp_path / "good.jsonl", good_lines())
    assert ledger(tmp_path, "import", "good.jsonl", "--batch-size", "0").returncode == 2
    assert ledger(tmp_path, "import", "good.jsonl", "--batch-size", "5001").returncode == 2
    assert ledger(tmp_path, "import", str(tmp_path)).returncode == 2, "a directory"
    unwritable = ledger(tmp_path, "import", "good.jsonl", "--rejects", "no/such/dir/r.jsonl")
    assert unwritable.returncode == 2
    assert "no/such/dir/r.jsonl" in unwritable.stderr


def test_a_planted_rejects_link_is_never_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    victim.chmod(0o644)
    (tmp_path / "good.rejects.jsonl").symlink_to(victim)
    write(tmp_path / "good.jsonl", good_lines())
    clean = ledger(tmp_path, "import", "good.jsonl")
    assert clean.returncode == 0, clean.stderr
    bad = {**b.submit("CLI-3", shipping_region="CN-HK"), "at": "2026-01-05T11:00:00+08:00"}
    write(tmp_path / "good.jsonl", [bad])
    rejected = ledger(tmp_path, "import", "good.jsonl", "--json")
    assert rejected.returncode == 1, rejected.stderr
    assert orjson.loads(rejected.stdout)["rejects_file"] == "good.rejects.2.jsonl"
    assert victim.read_bytes() == b"precious" and stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert (tmp_path / "good.rejects.jsonl").is_symlink()


def test_an_existing_rejects_path_exits_2_and_leaves_the_device_alone(tmp_path: Path) -> None:
    before = os.stat(os.devnull)
    write(tmp_path / "good.jsonl", good_lines())
    run = ledger(tmp_path, "import", "good.jsonl", "--rejects", os.devnull)
    assert run.returncode == 2
    assert "rejects" in run.stderr and "Traceback" not in run.stderr
    assert run.stderr == (
        "ledger: INVALID_COMMAND: --rejects: names an existing file; choose a new path (it is "
        "never overwritten)\n"
    )
    assert not (tmp_path / "var").exists(), "refused before the database was made"
    after = os.stat(os.devnull)
    assert stat.S_ISCHR(after.st_mode) and after.st_mode == before.st_mode
    assert ledger(tmp_path, "import", "good.jsonl").returncode == 0, "nothing was imported"


def test_a_line_dated_in_year_1_is_one_rejection_not_a_crash(tmp_path: Path) -> None:
    year1 = {**b.submit("CLI-Y"), "at": "0001-01-01T00:00:00+08:00"}
    write(tmp_path / "y.jsonl", [good_lines()[0], year1])
    run = ledger(tmp_path, "import", "y.jsonl", "--json")
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    report = orjson.loads(run.stdout)
    assert (report["imported"], report["rejected_by_code"]) == (1, {"INVALID_COMMAND": 1})


def in_bash(cwd: Path, command: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def test_an_import_from_a_process_substitution_reads_it_once_and_writes_no_rejects_there(
    tmp_path: Path,
) -> None:
    """``ledger import <(zcat orders.gz)``: the input is /dev/fd/N, a pipe that can be read
    once; a clean run makes no rejects file at all, one with a rejected line makes it here."""
    write(tmp_path / "good.jsonl", good_lines())
    clean = in_bash(tmp_path, f"{LEDGER} import <(cat good.jsonl) --json --no-progress")
    assert clean.returncode == 0, clean.stderr
    assert orjson.loads(clean.stdout)["imported"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.jsonl", "var"]

    bad = {**b.submit("CLI-P", shipping_region="CN-HK"), "at": "2026-01-05T11:00:00+08:00"}
    write(tmp_path / "bad.jsonl", [bad])
    rejected = in_bash(tmp_path, f"{LEDGER} import <(cat bad.jsonl) --json --no-progress")
    assert rejected.returncode == 1, rejected.stderr
    made = orjson.loads(rejected.stdout)["rejects_file"]
    assert re.fullmatch(r"\d+\.rejects\.jsonl", made), made  # /dev/fd/N → ./N.rejects.jsonl
    assert orjson.loads((tmp_path / made).read_bytes())["command"] == bad


def test_the_default_rejects_file_goes_in_the_current_directory_not_beside_the_input(
    tmp_path: Path,
) -> None:
    inputs, work = tmp_path / "inputs", tmp_path / "work"
    inputs.mkdir()
    work.mkdir()
    bad = {**b.submit("CLI-D", shipping_region="CN-HK"), "at": "2026-01-05T11:00:00+08:00"}
    write(inputs / "orders.jsonl", [*good_lines(), bad])
    run = ledger(work, "import", str(inputs / "orders.jsonl"), "--json")
    assert run.returncode == 1, run.stderr
    assert orjson.loads(run.stdout)["rejects_file"] == "orders.rejects.jsonl"
    assert stat.S_IMODE((work / "orders.rejects.jsonl").stat().st_mode) == 0o600
    assert [p.name for p in inputs.iterdir()] == ["orders.jsonl"], "nothing beside the input"


def test_an_import_from_a_fifo_opens_it_once(tmp_path: Path) -> None:
    fifo = tmp_path / "feed.jsonl"
    os.mkfifo(fifo)
    importing = subprocess.Popen(
        [str(LEDGER), "import", "feed.jsonl", "--json", "--no-progress"],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with fifo.open("wb") as feed:  # waits for the import to open it
        feed.write(b"".join(orjson.dumps(line) + b"\n" for line in good_lines()))
    out, err = importing.communicate(timeout=TIMEOUT_S)
    assert importing.returncode == 0, err
    assert orjson.loads(out)["imported"] == 3


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["import", ""], "FILE.jsonl: is empty"),
        (["import", "good.jsonl", "--rejects", ""], "--rejects: is empty"),
    ],
)
def test_an_empty_path_is_refused_naming_the_argument(
    args: list[str], named: str, tmp_path: Path
) -> None:
    write(tmp_path / "good.jsonl", good_lines())
    run = ledger(tmp_path, *args)
    assert run.returncode == 2
    assert run.stderr.startswith(f"ledger: INVALID_COMMAND: {named}"), run.stderr
    assert run.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.jsonl"], "nothing made"


def test_a_line_with_a_repeated_key_is_rejected_not_read_as_its_last_value(
    tmp_path: Path,
) -> None:
    submit = orjson.dumps({**b.submit("N1"), "at": "2026-01-05T10:00:00+08:00"})
    repeated = submit.replace(b'"order_no":"N1"', b'"order_no":"N1","order_no":"N2"')
    assert repeated != submit
    (tmp_path / "dup.jsonl").write_bytes(repeated + b"\n")
    run = ledger(tmp_path, "import", "dup.jsonl", "--json", "--no-progress")
    assert run.returncode == 1, run.stderr
    report = orjson.loads(run.stdout)
    assert report["rejected_by_code"] == {"INVALID_JSON": 1}
    assert "repeated key" in report["first_rejections"][0]["message"]
    (entry,) = [orjson.loads(x) for x in (tmp_path / "dup.rejects.jsonl").read_bytes().splitlines()]
    assert entry["raw"] == repeated.decode(), "the line as written, to be fixed"
