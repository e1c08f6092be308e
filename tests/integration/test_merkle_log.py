"""The Merkle log on SQLite and PostgreSQL: sealing, proofs an outsider checks with nothing but
the proof and the public key, and a tamper suite that changes the store with SQL and expects
``verify`` to name what and where."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.domain.context import LOCAL_ACTOR
from projections.engine import Runtime
from replay.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from replay.leaves import row_leaf
from replay.merkle import LeafList, leaf_hash, root, verify_consistency
from replay.prove import prove_consistency, prove_inclusion
from replay.seal import SealReport, seal
from replay.signed_note import Signer
from replay.tiles import TILE_WIDTH
from replay.verify import VerifyReport, verify
from tests.workload import run_traffic, traffic

ORIGIN = "mall-ledger.test/log"


@pytest.fixture
def signer() -> Signer:
    return Signer.generate(ORIGIN)


@pytest.fixture
def written(ledger_app: Ledger) -> Ledger:
    run_traffic(ledger_app, list(traffic(40, seed=12)))
    return ledger_app


def all_rows(rt: Runtime) -> list[Any]:
    with rt.db.snapshot() as cur:
        return rt.db.fetch_rows(cur, 0, 1_000_000, None)


def sealed(ledger: Ledger, rt: Runtime, signer: Signer, tmp_path: Path) -> SealReport:
    return seal(ledger, rt, signer, tmp_path / "checkpoints", LOCAL_ACTOR)


def checked(
    rt: Runtime, signer: Signer, files: list[tuple[str, str]] | None = None
) -> VerifyReport:
    return verify(rt, [signer.verifier()], ORIGIN, files or [])


def execute(rt: Runtime, sql: str, *params: Any) -> None:
    with rt.db.write() as cur:
        cur.execute(rt.db.sql(sql.format(t=rt.db.events_table, id=rt.db.id_column)), params)


def test_a_seal_covers_every_row_and_its_root_is_the_rfc_root_of_their_leaves(
    written: Ledger, rt: Runtime, signer: Signer, tmp_path: Path
) -> None:
    rows = all_rows(rt)
    report = sealed(written, rt, signer, tmp_path)
    assert report.size == len(rows) == report.appended
    assert report.size > TILE_WIDTH  # a full tile and a partial one
    assert report.root_hash == root(LeafList([row_leaf(r) for r in rows]), len(rows))
    assert report.last_position == rows[-1].position
    checkpoint = open_checkpoint(report.note, [signer.verifier()], ORIGIN)
    assert (checkpoint.size, checkpoint.root_hash) == (report.size, report.root_hash)
    assert report.file is not None and report.file.read_text() == report.note
    assert checked(rt, signer).intact


def test_sealing_again_adds_only_the_new_rows_and_the_trees_are_consistent(
    written: Ledger, rt: Runtime, signer: Signer, tmp_path: Path
) -> None:
    first = sealed(written, rt, signer, tmp_path)
    run_traffic(written, list(traffic(15, seed=13)))
    second = sealed(written, rt, signer, tmp_path)
    rows = all_rows(rt)
    assert second.size == len(rows) - 1  # all but the second seal's own checkpoint event
    assert second.appended == second.size - first.size
    assert second.root_hash == root(LeafList([row_leaf(r) for r in rows]), second.size)
    proof = prove_consistency(rt, first.size, second.size)
    verify_consistency(first.size, second.size, first.root_hash, second.root_hash, proof.hashes)
    report = checked(rt, signer)
    assert report.intact and report.checkpoints == [first.size, second.size]


def test_every_sealed_event_has_an_inclusion_proof_an_outsider_can_check(
    written: Ledger, rt: Runtime, signer: Signer, tmp_path: Path
) -> None:
    report = sealed(written, rt, signer, tmp_path)
    for row in all_rows(rt)[: report.size : 7]:
        proof = prove_inclusion(rt, row.position)
        assert proof.extra is not None
        # The outsider hashes the row bytes the proof carries; the position is in them.
        leaf = leaf_hash(proof.extra)
        assert proof.verify(leaf, [signer.verifier()], ORIGIN).size == report.size
        assert int.from_bytes(proof.extra[19:27], "big") == row.position


@pytest.mark.parametrize(
    ("change", "what"),
    [
        ("UPDATE {t} SET state = state || x'20' WHERE {id} = %s", "changed since it was sealed"),
        ("UPDATE {t} SET topic = topic || 'x' WHERE {id} = %s", "changed since it was sealed"),
        ("DELETE FROM {t} WHERE {id} = %s", "its row is gone"),
    ],
)
def test_a_row_changed_or_deleted_after_sealing_is_named_by_its_position(
    written: Ledger, rt: Runtime, signer: Signer, tmp_path: Path, change: str, what: str
) -> None:
    sealed(written, rt, signer, tmp_path)
    target = all_rows(rt)[100].position
    execute(rt, change.replace("x'20'", _space(rt)), target)
    report = checked(rt, signer)
    assert not report.intact
    assert report.problems[0].position == target and what in report.problems[0].what
    assert str(target) not in report.problems[0].what  # the position is said once, as such
    # Every checkpoint after it differs because of it: one line, a consequence, not a fork.
    assert len(report.problems) == 2
    assert report.problems[1].what.endswith(
        f"do not give its signed root only because of position {target} "
        "(a consequence of that row, not a fork)"
    )


def _space(rt: Runtime) -> str:
    return "'\\x20'::bytea" if rt.db.kind == "postgres" else "CAST(x'20' AS BLOB)"


def test_two_payloads_swapped_are_caught_at_the_first(
    written: Ledger, rt: Runtime, signer: Signer, tmp_path: Path
) -> None:
    sealed(written, rt, signer, tmp_path)
    rows = all_rows(rt)
    a, b = rows[30], rows[31]
    execute(rt, "UPDATE {t} SET state = %s WHERE {id} = %s", b.state, a.position)
    execute(rt, "UPDATE {t} SET state = %s WHERE {id} = %s", a.state, b.position)
    report = checked(rt, signer)
    assert report.problems[0].position == a.position


def test_a_forged_row_inserted_into_a_gap_is_named(
    written: Ledger, rt: Runtime, signer: Signer, tmp_path: Path
) -> None:
    rows = all_rows(rt)
    victim = rows[50]
    execute(rt, "DELETE FROM {t} WHERE {id} = %s", victim.position)  # a gap before sealing
    sealed(written, rt, signer, tmp_path)
    _insert(rt, victim)
    report = checked(rt, signer)
    assert report.problems[0].position == victim.position
    assert "not a sealed row" in report.problems[0].what


def _insert(rt: Runtime, row: Any) -> None:
    columns = f"{rt.db.id_column}, originator_id, originator_version, topic, state"
    stream = row.stream if rt.db.kind == "postgres" else row.stream.replace("-", "")
    execute(rt, f"INSERT INTO {{t}} ({columns}) VALUES (%s, %s, %s, %s, %s)", row.position,
            _uuid_param(rt, stream), row.version, row.topic, row.state)  # fmt: skip


def _uuid_param(rt: Runtime, stream: str) -> Any:
    from uuid import UUID

    return UUID(stream) if rt.db.kind == "postgres" else stream


def test_the_tail_deleted_after_a_checkpoint_is_a_truncation(
    written: Ledger, rt: Runtime, signer: Signer, tmp_path: Path
) -> None:
    report = sealed(written, rt, signer, tmp_path)
    execute(rt, "DELETE FROM {t} WHERE {id} > %s", all_rows(rt)[report.size - 6].position)
    found = checked(rt, signer)
    assert any("rows were deleted from its end" in p.what for p in found.problems)


def test_a_checkpoint_signed_by_another_key_fails(
    written: Ledger, rt: Runtime, signer: Signer, tmp_path: Path
) -> None:
    report = sealed(written, rt, signer, tmp_path)
    forged = sign_checkpoint(
        Checkpoint(ORIGIN, report.size, report.root_hash), Signer.generate(ORIGIN)
    )
    found = checked(rt, signer, [("kept file", forged)])
    assert [p.what for p in found.problems] == [
        "kept file: the note carries no signature by a trusted key"
    ]


def test_a_log_rewritten_and_sealed_again_fails_on_the_checkpoint_kept_outside(
    written: Ledger, rt: Runtime, signer: Signer, tmp_path: Path
) -> None:
    first = sealed(written, rt, signer, tmp_path)
    kept = first.note
    rows = all_rows(rt)
    # The forger, holding the key, rewrites a row and every table of the tree, then reseals.
    execute(rt, "UPDATE {t} SET state = %s WHERE {id} = %s", rows[5].state + b" ", rows[5].position)
    with rt.db.write() as cur:
        for table in ("ledger_merkle_tiles", "ledger_merkle_head", "ledger_merkle_checkpoints"):
            cur.execute(f"DELETE FROM {table}")
    seal(written, rt, signer, None, LOCAL_ACTOR)
    assert checked(rt, signer).intact  # the database alone agrees with itself
    found = checked(rt, signer, [("the auditor's copy", kept)])
    assert [p.leaf for p in found.problems] == [0]
    assert "a fork" in found.problems[0].what


def test_after_a_subjects_key_is_destroyed_the_log_still_verifies(
    written: Ledger, rt: Runtime, signer: Signer, tmp_path: Path
) -> None:
    sealed(written, rt, signer, tmp_path)
    account = _a_subject(written, rt)
    written.keystore.destroy(account, written.clock.now())
    assert checked(rt, signer).intact


def _a_subject(ledger: Ledger, rt: Runtime) -> str:
    """The subject of the first sealed token stored in the log."""
    for row in all_rows(rt):
        found = re.search(rb'"(s[0-9]:[^"]+)"', bytes(row.state))
        if found:
            return ledger.sealer.subject_of(found.group(1).decode())
    raise AssertionError("no sealed personal field in the log")
