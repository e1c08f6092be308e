"""Checkpoint files of several ledgers in one directory, on SQLite and PostgreSQL: each log
writes under its own log id, so the default ``var/checkpoints`` and key shared by every ledger
run from one directory never make one ledger's seal fail on, or its ``verify`` report a fork
for, another ledger's file; a seal refused by its file keeps nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.application import Ledger
from ledger.domain.context import LOCAL_ACTOR
from projections.engine import Runtime
from replay.checkpoint import Checkpoint, sign_checkpoint
from replay.log_identity import checkpoint_path
from replay.seal import seal
from replay.signed_note import NoteInvalid, Signer
from replay.tiles import TileStore
from replay.verify import verify
from tests.fix_app import opened_ledger, opened_runtime
from tests.workload import run_traffic, traffic

ORIGIN = "mall-ledger.local/log"  # the default log name both ledgers share


@pytest.fixture
def signer() -> Signer:
    return Signer.generate(ORIGIN)


def test_two_ledgers_sealed_into_one_directory_keep_their_own_files_and_verify_tells_them_apart(
    ledger_app: Ledger, rt: Runtime, signer: Signer, tmp_path: Path
) -> None:
    shared = tmp_path / "checkpoints"
    run_traffic(ledger_app, list(traffic(5, seed=3)))
    first = seal(ledger_app, rt, signer, shared, LOCAL_ACTOR)
    other_url = f"sqlite:///{tmp_path / 'other.db'}"
    with opened_ledger(other_url) as other_app, opened_runtime(other_url) as other_rt:
        run_traffic(other_app, list(traffic(5, seed=3)))
        second = seal(other_app, other_rt, signer, shared, LOCAL_ACTOR)
        files = [(str(second.file), second.note)]
        assert verify(other_rt, [signer.verifier()], ORIGIN, files).intact
    assert first.size == second.size  # one size, one default directory: the newcomer's case
    assert first.log_id != second.log_id and first.file != second.file
    assert first.file == checkpoint_path(shared, first.log_id, first.size)
    mine = (str(first.file), first.note)
    assert verify(rt, [signer.verifier()], ORIGIN, [mine]).intact
    report = verify(rt, [signer.verifier()], ORIGIN, [mine, (str(second.file), second.note)])
    assert [p.what for p in report.problems] == [
        f"{second.file}: not this ledger's checkpoint: it is of the log {second.log_id}, "
        f"this ledger's log id is {first.log_id}"
    ]


def test_the_log_id_is_made_at_the_first_seal_and_kept(
    ledger_app: Ledger, rt: Runtime, signer: Signer, tmp_path: Path
) -> None:
    run_traffic(ledger_app, list(traffic(3, seed=4)))
    assert verify(rt, [signer.verifier()], ORIGIN).log_id is None
    first = seal(ledger_app, rt, signer, tmp_path, LOCAL_ACTOR)
    second = seal(ledger_app, rt, signer, tmp_path, LOCAL_ACTOR)
    assert len(first.log_id) == 16 and first.log_id == second.log_id
    assert verify(rt, [signer.verifier()], ORIGIN).log_id == first.log_id
    assert sorted(p.name for p in (tmp_path / first.log_id).iterdir()) == sorted(
        [f"{first.size}.checkpoint", f"{second.size}.checkpoint"]
    )


def test_a_seal_stopped_by_another_checkpoint_on_file_keeps_records_and_writes_nothing(
    ledger_app: Ledger, rt: Runtime, signer: Signer, tmp_path: Path
) -> None:
    run_traffic(ledger_app, list(traffic(3, seed=5)))
    first = seal(ledger_app, rt, signer, tmp_path, LOCAL_ACTOR)
    size = first.size + 1  # the next seal covers the first one's CheckpointSealed event
    forged = sign_checkpoint(Checkpoint(ORIGIN, size, bytes(32)), signer)
    path = checkpoint_path(tmp_path, first.log_id, size)
    path.write_text(forged)
    with pytest.raises(NoteInvalid, match="another checkpoint of .* of this log"):
        seal(ledger_app, rt, signer, tmp_path, LOCAL_ACTOR)
    store = TileStore(rt.db)
    with rt.db.snapshot() as cur:
        assert store.checkpoint(cur, size) is None
        assert [s for s, _ in store.checkpoints(cur)] == [first.size]
        assert len(rt.db.fetch_rows(cur, 0, 1_000_000, None)) == size  # no event recorded
    assert path.read_text() == forged  # the file an auditor kept stays


def test_a_seal_whose_checkpoint_cannot_be_kept_leaves_no_file(
    ledger_app: Ledger, rt: Runtime, signer: Signer, tmp_path: Path
) -> None:
    run_traffic(ledger_app, list(traffic(3, seed=6)))
    first = seal(ledger_app, rt, signer, None, LOCAL_ACTOR)
    size = first.size + 1
    store = TileStore(rt.db)
    with rt.db.write() as cur:  # what a crash and a changed key leave: another note kept
        store.add_checkpoint(
            cur, size, 0, sign_checkpoint(Checkpoint(ORIGIN, size, bytes(32)), signer)
        )
    with pytest.raises(NoteInvalid, match="another checkpoint of"):
        seal(ledger_app, rt, signer, tmp_path, LOCAL_ACTOR)
    assert not checkpoint_path(tmp_path, first.log_id, size).exists()
