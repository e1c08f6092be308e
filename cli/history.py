"""``ledger seal``, ``ledger prove`` and ``ledger verify``: the verifiable history (replay/).

- ``seal [--public-key] [--json]`` extends the Merkle log, signs a checkpoint, keeps it in the
  database, records it as an event and writes ``<log id>/<size>.checkpoint`` to
  ``LEDGER_CHECKPOINT_DIR`` (each ledger's log its own directory). ``--public-key`` only
  prints the C2SP verifier key to give auditors (making the signing key on first use).
- ``prove POSITION [--size N]`` prints a C2SP ``tlog-proof`` of that event against the latest
  (or the ``N``-leaf) checkpoint; ``prove --consistency A B`` the RFC 9162 consistency proof
  between two checkpoints.
- ``verify [--checkpoint FILE …] [--public-key FILE] [--json]`` recomputes the tree and checks
  it: exit 0 only if intact, 1 naming the first bad position and what is wrong.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from cli.args import add_database_url, add_json, int_range
from cli.exits import Exit
from ledger.domain.context import LOCAL_ACTOR
from ledger.domain.errors import InvalidCommand
from ledger.settings import Settings
from replay.signed_note import NoteInvalid, Verifier
from replay.signing_key import load_signer
from replay.verify import VerifyReport

MAX_CHECKPOINT_FILE_BYTES = 1 << 20


def register(subparsers: Any) -> None:
    seal = subparsers.add_parser("seal", help="sign a checkpoint of the log (RFC 9162, C2SP)")
    seal.add_argument(
        "--public-key",
        action="store_true",
        help="print the verifier key to give auditors, and seal nothing",
    )
    add_json(seal, "the checkpoint")
    add_database_url(seal)
    seal.set_defaults(run=cmd_seal)

    prove = subparsers.add_parser("prove", help="prove an event is in a checkpoint")
    prove.add_argument(
        "position",
        metavar="POSITION",
        nargs="?",
        type=int_range(1),
        help="the event's log position",
    )
    prove.add_argument(
        "--size",
        type=int_range(1),
        metavar="N",
        help="against the checkpoint of N events (default: the latest)",
    )
    prove.add_argument(
        "--consistency",
        nargs=2,
        type=int_range(1),
        metavar=("SIZE_A", "SIZE_B"),
        help="prove the checkpoint of SIZE_A events is a prefix of SIZE_B's",
    )
    add_json(prove, "the proof")
    add_database_url(prove)
    prove.set_defaults(run=cmd_prove)

    verify = subparsers.add_parser("verify", help="check the log against its checkpoints")
    verify.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="a checkpoint file kept outside the database (repeat)",
    )
    verify.add_argument(
        "--public-key",
        type=Path,
        metavar="FILE",
        help="the verifier key to trust (default: this ledger's own)",
    )
    verify.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_json(verify, "the report")
    add_database_url(verify)
    verify.set_defaults(run=cmd_verify)


def cmd_seal(args: argparse.Namespace, settings: Settings) -> int:
    if args.public_key:
        print(load_signer(settings.signing_key_path, settings.log_name).verifier().text())
        return Exit.OK
    from ledger.application import open_ledger
    from projections.engine import open_runtime
    from replay.seal import seal

    # Sealing reads no personal data: the master key file is not needed.
    ledger = open_ledger(settings.database_url, create=False, policy=settings.policy, keys=False)
    try:
        signer = load_signer(settings.signing_key_path, settings.log_name)  # a ledger to seal
        rt = open_runtime(settings.database_url, create=False)
        try:
            with tqdm(unit="ev", desc="seal", disable=None, file=sys.stderr) as bar:
                report = seal(
                    ledger,
                    rt,
                    signer,
                    settings.checkpoint_dir,
                    LOCAL_ACTOR,
                    lambda size: bar.update(size - bar.n),
                )
        finally:
            rt.close()
    finally:
        ledger.close()
    if args.json:
        print(
            json.dumps(
                {
                    "log_id": report.log_id,
                    "size": report.size,
                    "root_hash": b64(report.root_hash),
                    "last_position": report.last_position,
                    "appended": report.appended,
                    "checkpoint": report.note,
                    "file": str(report.file),
                }
            )
        )
    else:
        print(report.note, end="")
        print(
            f"log {report.log_id}: sealed {report.appended} new events: {report.size} in all, "
            f"to position {report.last_position}; written to {report.file}",
            file=sys.stderr,
        )
    return Exit.OK


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def cmd_prove(args: argparse.Namespace, settings: Settings) -> int:
    from projections.engine import open_runtime
    from replay.prove import prove_consistency, prove_inclusion

    if (args.position is None) == (args.consistency is None):
        raise InvalidCommand("POSITION", "give an event's POSITION or --consistency SIZE_A SIZE_B")
    rt = open_runtime(settings.database_url, create=False)
    try:
        if args.consistency:
            proof = prove_consistency(rt, *args.consistency)
            body = {
                "old_size": proof.old_size,
                "new_size": proof.new_size,
                "old_checkpoint": proof.old,
                "new_checkpoint": proof.new,
                "hashes": [b64(h) for h in proof.hashes],
            }
            text = "".join(f"{b64(h)}\n" for h in proof.hashes)
        else:
            inclusion = prove_inclusion(rt, args.position, args.size)
            body = {"index": inclusion.index, "tlog_proof": inclusion.text()}
            text = inclusion.text()
    finally:
        rt.close()
    print(json.dumps(body) if args.json else text, end="\n" if args.json else "")
    return Exit.OK


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from projections.engine import open_runtime
    from replay.verify import verify

    rt = open_runtime(settings.database_url, create=False)
    try:
        verifier = _verifier(args.public_key, settings)
        files = [(str(path), _read_checkpoint(path)) for path in args.checkpoint]
        with tqdm(
            unit="ev", desc="verify", disable=True if args.no_progress else None, file=sys.stderr
        ) as bar:
            report = verify(
                rt, [verifier], settings.log_name, files, lambda size: bar.update(size - bar.n)
            )
    finally:
        rt.close()
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        _print_verify(report)
    return Exit.OK if report.intact else Exit.PROBLEM


def _verifier(path: Path | None, settings: Settings) -> Verifier:
    """The key to trust: the file's (an auditor's copy), else this ledger's own, which
    must exist already (verify never makes a key)."""
    if path is None:
        if not settings.signing_key_path.exists():
            raise InvalidCommand(
                "--public-key",
                f"give the verifier key to trust: this ledger has no signing key at "
                f"{settings.signing_key_path} (`ledger seal` makes one)",
            )
        return load_signer(settings.signing_key_path, settings.log_name, create=False).verifier()
    try:
        return Verifier.parse(path.read_text(encoding="utf-8")[:1024])
    except NoteInvalid as exc:
        raise InvalidCommand("--public-key", exc.message) from None


def _read_checkpoint(path: Path) -> str:
    with path.open("rb") as handle:
        data = handle.read(MAX_CHECKPOINT_FILE_BYTES + 1)
    if len(data) > MAX_CHECKPOINT_FILE_BYTES:
        raise InvalidCommand("--checkpoint", f"{path} is larger than a checkpoint")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidCommand("--checkpoint", f"{path} is not UTF-8 text") from None


def _print_verify(report: VerifyReport) -> None:
    checkpoints = ", ".join(str(size) for size in report.checkpoints) or "none"
    log_id = report.log_id or "none yet (never sealed)"
    print(
        f"log {log_id}: rows {report.rows}, sealed {report.sealed}, "
        f"checkpoints checked: {checkpoints}"
    )
    if report.intact:
        print("intact")
        return
    for problem in report.problems:
        where = f"position {problem.position}: " if problem.position is not None else ""
        print(f"NOT INTACT: {where}{problem.what}")
