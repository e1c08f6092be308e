"""``ledger export``: regulators' exports (ECL 25; replay/export.py) and their offline check.

- ``export request --authority A --reference R --basis B [--from T] [--to T] [--seller S]
  [--account A] [--sku K] [--region R] [--personal-data] [--json]`` records a request and
  prints its id;
- ``export REQUEST_ID --out DIR [--json]`` (``export write …``) writes the request's bag from
  the latest checkpoint;
- ``verify-export DIR --public-key FILE`` checks a bag with nothing of the database: exit 0
  only if it verifies, 1 naming what does not, 2 (``IO_ERROR``) for a path given that
  cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from cli.args import account_no, add_database_url, add_json, identifier, output_dir, region
from cli.exits import Exit
from cli.replay import moment
from ledger.domain.context import LOCAL_ACTOR
from ledger.domain.errors import InvalidCommand
from ledger.domain.export_request import MAX_TEXT_CHARS, REQUEST_ID_RE, ExportScope
from ledger.settings import Settings


def check_text(value: str, option: str) -> str:
    """One line of 1 to 200 printable characters (an authority, a basis: free text, any
    script); ``InvalidCommand`` naming ``option``, never echoing the value."""
    if not 0 < len(value) <= MAX_TEXT_CHARS or not value.isprintable():
        raise InvalidCommand(option, f"must be 1 to {MAX_TEXT_CHARS} printable characters")
    return value


def request_id(value: str) -> str:
    if not REQUEST_ID_RE.fullmatch(value):
        raise argparse.ArgumentTypeError("must be an export request id (exp- and 12 hex digits)")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export", help="regulators' exports: record a request, write its bag (ECL 25)"
    )
    sub = parser.add_subparsers(dest="export_command", required=True, metavar="request|REQUEST_ID")
    req = sub.add_parser("request", help="record an authority's request; prints its id")
    req.add_argument("--authority", required=True, help="the requesting authority")
    req.add_argument("--reference", required=True, type=identifier, help="its file reference")
    req.add_argument("--basis", required=True, help="the legal basis cited")
    req.add_argument(
        "--from",
        dest="since",
        type=moment,
        metavar="T",
        help="orders submitted at or after T (with its offset)",
    )
    req.add_argument("--to", dest="until", type=moment, metavar="T", help="… and before T")
    # Each filter takes what the commands take in the field it matches: an account number is
    # never a phone number or email (it is kept in clear in the request's event).
    for name, kind in (("seller", identifier), ("account", account_no), ("sku", identifier),
                       ("region", region)):  # fmt: skip
        req.add_argument(f"--{name}", type=kind, help=f"only orders of this {name}")
    req.add_argument(
        "--personal-data",
        action="store_true",
        help="the basis requires personal data in clear (else pseudonyms)",
    )
    add_json(req, "the request's id")
    add_database_url(req)
    req.set_defaults(run=cmd_request)

    write = sub.add_parser("write", help="write a request's export (short form: export ID)")
    write.add_argument("request_id", metavar="REQUEST_ID", type=request_id, help="its id")
    write.add_argument(
        "--out",
        required=True,
        type=output_dir,
        metavar="DIR",
        help="the directory to make (must not exist, or be empty)",
    )
    add_json(write, "the export's summary")
    add_database_url(write)
    write.set_defaults(run=cmd_write)

    check = subparsers.add_parser("verify-export", help="check an export offline")
    check.add_argument("export_dir", metavar="DIR", type=Path, help="the export (a BagIt bag)")
    check.add_argument(
        "--public-key",
        required=True,
        type=Path,
        metavar="FILE",
        help="the ledger's verifier key (ledger seal --public-key)",
    )
    check.set_defaults(run=cmd_verify_export)


def cmd_request(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.application import open_ledger
    from replay.export import request_export

    authority = check_text(args.authority, "--authority")
    basis = check_text(args.basis, "--basis")
    scope = ExportScope(args.since, args.until, args.seller, args.account, args.sku, args.region)
    ledger = open_ledger(settings.database_url, create=False, policy=settings.policy)
    try:
        found = request_export(
            ledger,
            LOCAL_ACTOR,
            authority,
            args.reference,
            basis,
            scope,
            args.personal_data,
        )
    finally:
        ledger.close()
    print(json.dumps({"request_id": found}) if args.json else found)
    return Exit.OK


def cmd_write(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.access_files import check_output_dir
    from ledger.application import open_ledger
    from projections.engine import open_runtime
    from replay.export import write_export
    from replay.signing_key import load_signer

    check_output_dir(args.out)  # before the database is opened, as ``ledger access``
    ledger = open_ledger(settings.database_url, create=False, policy=settings.policy)
    try:
        signer = load_signer(settings.signing_key_path, settings.log_name, create=False)
        rt = open_runtime(settings.database_url, create=False)
        try:
            with tqdm(unit="ev", desc="export", disable=None, file=sys.stderr) as bar:
                report = write_export(
                    ledger,
                    rt,
                    args.request_id,
                    args.out,
                    signer,
                    LOCAL_ACTOR,
                    lambda n: bar.update(n - bar.n),
                )
        finally:
            rt.close()
    finally:
        ledger.close()
    summary = {
        "request_id": report.request_id,
        "out": str(report.out),
        "checkpoint_size": report.checkpoint_size,
        "counts": report.counts,
        "manifest_sha256": report.manifest_sha256,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        counts = ", ".join(f"{k} {v}" for k, v in report.counts.items())
        print(
            f"export {report.request_id} written to {report.out} ({counts}); check it with: "
            f"python {report.out}/data/verify_export.py {report.out} --public-key FILE"
        )
    return Exit.OK


def cmd_verify_export(args: argparse.Namespace, settings: Settings) -> int:
    from replay import export_verifier

    # A path that cannot be read is the caller's IO_ERROR (exit 2, cli/app.py), not a verdict.
    vkey_text = export_verifier.read_inputs(args.export_dir, args.public_key)
    code, line = export_verifier.verify(args.export_dir, vkey_text)
    print(line)
    return code
