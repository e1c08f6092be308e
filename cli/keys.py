"""``ledger keys create|list|revoke``: API keys for ``ledger serve``; ``ledger keys
rotate-master|compact``: the data-subject key store's master key and storage.

``create --role ROLE --name NAME`` prints the key once (``--json``: ``{"key", "id", "role",
"name"}``); only its SHA-256 is stored, so a lost key is revoked and replaced, never shown
again. Roles: service, auditor, regulator, admin (api/auth.py says what each may do).

``expire-linkage`` destroys the linkage key of every year Y on or after 1 January Y+2
(ledger/key_admin.py), so no digest of that year can be tested against a guess any more.
``rotate-master`` re-wraps every subject and linkage key of one database under the master
keyring's current version, adding a new version unless an earlier run (here or on another
database sharing the file) left keys to finish (ledger/key_admin.py; resumable after a kill);
older versions stay in the keyring, so other databases keep working. ``retire-master ID``
removes an old version only after checking every database the keyring knows of, and only with
``--yes``. ``compact`` rewrites the key table's storage so
destroyed keys' old bytes go (VACUUM FULL on PostgreSQL, VACUUM and a WAL truncation on SQLite).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from cli.args import add_database_url, add_json
from cli.exits import Exit
from ledger.domain.context import ROLES
from ledger.settings import Settings

if TYPE_CHECKING:
    from ledger.api_keys import IssuedKey


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("keys", help="create, list and revoke API keys")
    sub = parser.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--role", required=True, choices=ROLES, help="what the key may do")
    create.add_argument("--name", required=True, help="a label for the key (not a person)")
    add_json(create, '{"key", "id", "role", "name"}')
    add_database_url(create)
    create.set_defaults(run=cmd_create)
    listing = sub.add_parser("list", help="every key ever created (never the secrets)")
    add_json(listing, "the keys (a list)")
    add_database_url(listing)
    listing.set_defaults(run=cmd_list)
    revoke = sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", metavar="ID", help="the key's id (ledger keys list)")
    add_database_url(revoke)
    revoke.set_defaults(run=cmd_revoke)
    rotate = sub.add_parser(
        "rotate-master",
        help="re-wrap every data-subject key under a new master key (run again if interrupted)",
    )
    add_json(rotate, '{"rewrapped", "master_key_id", "resumed", "older_master_key_ids"}')
    add_database_url(rotate)
    rotate.set_defaults(run=cmd_rotate_master)
    retire = sub.add_parser(
        "retire-master",
        help="remove an old master key version from the keyring once no database uses it",
    )
    retire.add_argument("master_key_id", metavar="ID", help="the version (rotate-master prints it)")
    retire.add_argument(
        "--check",
        action="append",
        default=[],
        metavar="URL",
        help="also check this database (repeatable); every database that opened the keyring "
        "is checked anyway",
    )
    retire.add_argument(
        "--forget",
        action="append",
        default=[],
        metavar="URL",
        help="drop a database deleted for good from the keyring's list, unchecked (repeatable)",
    )
    retire.add_argument(
        "--yes", action="store_true", help="retire it if the check passes (without: check only)"
    )
    add_json(retire, '{"master_key_id", "keys_wrapped", "unchecked", "retired"}')
    add_database_url(retire)
    retire.set_defaults(run=cmd_retire_master)
    compact = sub.add_parser(
        "compact", help="rewrite the key table so destroyed keys' old bytes go (after erasures)"
    )
    add_database_url(compact)
    compact.set_defaults(run=cmd_compact)
    expire = sub.add_parser(
        "expire-linkage",
        help="destroy the linkage keys of years that ended over a year ago (idempotent)",
    )
    add_json(expire, '{"destroyed_years"}')
    add_database_url(expire)
    expire.set_defaults(run=cmd_expire_linkage)


def cmd_create(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.api_keys import check_name, create_key
    from ledger.application import open_ledger

    check_name(args.name)

    ledger = open_ledger(settings.database_url, policy=settings.policy, keys=False)
    try:
        # A key saved but never shown is lost, and its name taken: from the save until the key
        # is printed, Ctrl-C and SIGTERM wait (and are answered right after).
        with signals_held():
            issued = create_key(ledger, args.role, args.name)
            show(issued, as_json=args.json)
    finally:
        ledger.close()
    return Exit.OK


def show(issued: IssuedKey, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(issued.as_dict()))
    else:
        print(issued.key)
        print(f"id {issued.key_id}, role {issued.role}: keep the key now; it is not shown again")
    sys.stdout.flush()


@contextmanager
def signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM held back for the block, then delivered (a pending one raises as
    usual once the block is done)."""
    held = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.api_keys import list_keys
    from ledger.application import open_ledger

    ledger = open_ledger(settings.database_url, create=False, policy=settings.policy, keys=False)
    try:
        keys = list_keys(ledger)
    finally:
        ledger.close()
    if args.json:
        print(json.dumps(keys, default=str))
        return Exit.OK
    for key in keys:
        state = f"revoked {key['revoked_at']:%Y-%m-%d}" if key["revoked_at"] else "live"
        print(f"{key['key_id']}  {key['role']:<9}  {state:<18}  {key['name']}")
    return Exit.OK


def cmd_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.api_keys import check_key_id, revoke_key
    from ledger.application import open_ledger

    check_key_id(args.key_id)  # before the database: a typo is a usage error, wherever it runs

    ledger = open_ledger(settings.database_url, create=False, policy=settings.policy, keys=False)
    try:
        done = revoke_key(ledger, args.key_id)
    finally:
        ledger.close()
    print(f"revoked {args.key_id}" if done else f"{args.key_id} was already revoked")
    return Exit.OK


def cmd_rotate_master(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from ledger.application import open_ledger
    from ledger.key_admin import rotate_master

    ledger = open_ledger(settings.database_url, create=False, policy=settings.policy)
    try:
        total = ledger.keystore.count_live()
        with tqdm(total=total, unit="key", desc="re-wrapping", disable=None) as bar:
            done = rotate_master(ledger.keystore, bar.update)
    finally:
        ledger.close()
    if args.json:
        print(json.dumps(done.as_dict()))
    else:
        again = " (the keyring's current version, added by an earlier run)" if done.resumed else ""
        print(f"re-wrapped {done.rewrapped} keys under master key {done.master_key_id}{again}")
        if done.older_ids:
            print(
                f"the keyring still holds {', '.join(done.older_ids)} for databases not yet "
                "rotated: `ledger keys retire-master ID` removes one once none uses it"
            )
    return Exit.OK


def cmd_retire_master(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.key_admin import retire_master
    from ledger.key_wrapping import default_wrapper

    here = [] if settings.database_url is None else [settings.database_url]
    check = retire_master(
        default_wrapper(),
        args.master_key_id,
        [*here, *args.check],
        args.forget,
        confirmed=args.yes,
    )
    if args.json:
        print(json.dumps(check.as_dict()))
    else:
        for url, count in check.in_use.items():
            print(f"{url}: {count} keys wrapped by {check.master_key_id}")
        for url, why in check.unchecked.items():
            print(f"{url}: not checked ({why})")
        print(_retire_outcome(check.retired, check.safe, check.master_key_id))
    return Exit.OK if check.retired else Exit.PROBLEM


def _retire_outcome(retired: bool, safe: bool, master_id: str) -> str:
    if retired:
        return f"retired master key {master_id}: keys it wrapped can no longer be opened"
    if not safe:
        return (
            f"not retired: run `ledger keys rotate-master --database-url URL` on each database "
            f"above that holds keys wrapped by {master_id} (or --forget one deleted for good)"
        )
    return f"no known database uses {master_id}: run again with --yes to retire it"


def cmd_compact(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.application import open_ledger

    ledger = open_ledger(settings.database_url, create=False, policy=settings.policy, keys=False)
    try:
        ledger.keystore.compact()
    finally:
        ledger.close()
    print("key store compacted")
    return Exit.OK


def cmd_expire_linkage(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.application import open_ledger
    from ledger.key_admin import expire_linkage

    ledger = open_ledger(settings.database_url, create=False, policy=settings.policy)
    try:
        years = expire_linkage(ledger.keystore, ledger.clock.now())
    finally:
        ledger.close()
    if args.json:
        print(json.dumps({"destroyed_years": years}))
    else:
        done = ", ".join(str(y) for y in years) if years else "none due"
        print(f"linkage keys destroyed: {done}")
    return Exit.OK
