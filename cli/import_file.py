"""``ledger import FILE.jsonl``: load commands in batched transactions (see ledger.importer)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson
from tqdm import tqdm

from cli.args import add_batch_size, add_database_url, add_json, named_as_option
from cli.exits import Exit
from ledger.application import open_ledger
from ledger.domain.errors import InvalidCommand
from ledger.importer import (
    DEFAULT_BATCH_SIZE,
    MAX_BATCH_SIZE,
    MAX_LISTED_REJECTIONS,
    Rejection,
    check_new_rejects_path,
    check_rejects_place,
    default_rejects_path,
    import_opened,
)
from ledger.settings import Settings

DESCRIPTION = """\
Import commands from a JSON-lines file: one command object per line, as the API takes it,
optionally with a top-level "at" (ISO-8601 with offset, e.g. 2025-11-11T00:00:05+08:00) giving
the time it happened; without "at" the command happens now. Blank lines are skipped.

"at" must lie between 2000-01-01 and now plus five minutes, and not before the last event of
any record the command changes (TIME_BEFORE_STREAM).

Commands are saved in batched transactions. Lines that cannot be imported (bad JSON, invalid
command, refused by a rule, conflict, command id reused with another payload, an unexpected
failure) are reported by line number and code and written to the rejects file; the other lines
are kept. Re-running the same file gives the same ledger: commands already imported are
recognised by their command_id and skipped, and those refused by a rule are refused again.
"""

EPILOG = """\
The rejects file holds each rejected line's ORIGINAL command, personal data included (names,
phones, addresses), so that it can be fixed and imported again. It is created with mode 0600:
protect it like the input file and delete it once the lines are dealt with. It is always a new
file, never written through a link, made only when a line is rejected: by default the first
free one of FILE.rejects.jsonl, FILE.rejects.2.jsonl, ... in the current directory (FILE's own
name without its directory; an earlier run's is kept); a --rejects PATH must not exist.

exit status: 0 every line imported (or already imported), 1 some lines were rejected,
2 the file cannot be read or the arguments are wrong.
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "import",
        help="import commands from a JSON-lines file",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "file",
        metavar="FILE.jsonl",
        help="the commands, one JSON object a line (read once: a pipe or FIFO works)",
    )
    add_batch_size(parser, what="commands", high=MAX_BATCH_SIZE, default=DEFAULT_BATCH_SIZE)
    parser.add_argument(
        "--rejects",
        metavar="PATH",
        help="a new file for rejected lines, made only if a line is rejected (default: the "
        "first free FILE.rejects[.N].jsonl in the current directory; mode 0600, holds "
        "personal data)",
    )
    add_json(parser, "the summary (one object)")
    add_database_url(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.set_defaults(run=run)


class RejectionPrinter:
    """Reports rejected lines on stderr (code and message only), the first few of them."""

    def __init__(self, limit: int = MAX_LISTED_REJECTIONS) -> None:
        self.limit = limit
        self.seen = 0

    def __call__(self, rejection: Rejection) -> None:
        self.seen += 1
        if self.seen <= self.limit:
            tqdm.write(f"rejected {rejection.describe()}", file=sys.stderr)
        elif self.seen == self.limit + 1:
            tqdm.write("more rejected lines: see the rejects file", file=sys.stderr)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Import the file. It is opened once (a pipe or FIFO cannot be opened again), and it and
    the rejects file's place are checked before the database is opened, so a run refused for
    them makes no SQLite file: an empty path is ``INVALID_COMMAND`` naming the argument, an
    input that cannot be read or a rejects file that could not be made ``IO_ERROR``, a
    ``--rejects`` path that exists ``INVALID_COMMAND`` naming it (all exit 2, cli/app.py)."""
    path, rejects = _paths(args)
    with path.open("rb") as stream, named_as_option("rejects", "--rejects"):
        if rejects is not None:
            check_new_rejects_path(rejects)
        check_rejects_place(rejects or default_rejects_path(path))
        ledger = open_ledger(settings.database_url, policy=settings.policy)
        try:
            report = import_opened(
                ledger,
                stream,
                path,
                batch_size=args.batch_size,
                rejects_path=rejects,
                progress=not args.no_progress,
                on_reject=RejectionPrinter(),
            )
        finally:
            ledger.close()
    if args.json:
        sys.stdout.write(orjson.dumps(report.as_dict()).decode() + "\n")
    else:
        print(report.summary())
    return Exit.PROBLEM if report.rejected else Exit.OK


def _paths(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """The input and the chosen rejects path; an empty one is refused (``Path("")`` would be
    the current directory)."""
    if not args.file:
        raise InvalidCommand("FILE.jsonl", "is empty: name the file of commands to import")
    if args.rejects == "":
        raise InvalidCommand(
            "--rejects", "is empty: name a new file for the rejected lines, or leave it out"
        )
    return Path(args.file), None if args.rejects is None else Path(args.rejects)
