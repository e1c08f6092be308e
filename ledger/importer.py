"""Bulk import of commands from a JSON-lines file (``ledger import``).

One JSON object per line: a command as ``parse_command`` accepts it, optionally with a top-level
``"at"`` (ISO-8601 with an offset) giving its historical time; without it the ledger's clock
says when. Blank lines are skipped. The file is streamed: at most one batch of lines (``batch_size``
lines or ``MAX_BATCH_BYTES`` of input, whichever is reached first) is held in memory.

Commands go through ``Ledger.execute_batch``, one transaction per batch (it falls back to one
transaction per command when a batch cannot be saved whole), so sealing, rules and idempotency
are exactly those of single commands. A line that cannot be imported (bad JSON, an invalid
command, a refusal by a rule, a conflict, a reused command id) is *rejected*: the other lines
still go in, and the rejection is counted, reported by line number and code (never with the
line's content) and written, with the original object, to the rejects file.

Re-running a file (whole, or after an interrupted run) gives the ledger one run gave: every
command id is found; an imported one is counted as "already imported", one refused by a rule
is refused again with the same code (its refusal was recorded, ``ledger.domain.command_record``)
even if the ledger has changed since. A line with an ``"at"`` before the last event of a stream
it writes is refused ``TIME_BEFORE_STREAM``; ``"at"`` must lie between 2000-01-01 and now
plus five minutes (``ledger.clock.check_command_time``). Any failure of one command, foreseen
or not, rejects that line only (``COMMAND_FAILED`` for a bug).

The rejects file holds the original commands, personal data included, so that they can be fixed
and imported again: it is created, at the first rejected line, new with mode 0600
(``ledger.files``: never through a link, never over an existing file; a re-run writes
``FILE.rejects.2.jsonl`` and so on) in the current directory unless a path is chosen, and must
be protected like the input. Sealing keys are created only for orders that passed their checks.

A line holding an object with a repeated key (``{"order_no": "N1", "order_no": "N2"}``) is
rejected ``INVALID_JSON``: RFC 8259 section 4 leaves such an object's meaning open, and
which value counted would be the parser's choice, not the writer's.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import json
import os
import re
import stat
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson
from tqdm import tqdm

from ledger.application import CommandResult, Ledger
from ledger.clock import EARLIEST_COMMAND_TIME, MAX_CLOCK_SKEW
from ledger.commands import command_schema, moment_json_schema, parse_moment, utc_text
from ledger.domain import codes
from ledger.domain.errors import InvalidCommand, LedgerError
from ledger.files import create_new, create_numbered
from ledger.keystore import validate_subject_id

DEFAULT_BATCH_SIZE = 500
MAX_BATCH_SIZE = 5000
MAX_LINE_BYTES = 1 << 20  # one command; a longer line is rejected, not read into memory
MAX_BATCH_BYTES = 32 << 20  # input held at once: a batch is cut short when it reaches this
MAX_LISTED_REJECTIONS = 20  # rejections kept in the report itself (all go to the rejects file)
_SKIP_CHUNK_BYTES = 1 << 16
IMPORT_TIME = "ImportTime"  # the schema of "at", under $defs


@dataclass(frozen=True)
class Rejection:
    """Why one line was not imported: a code, a clause and a message, never the content."""

    line: int
    code: str
    clause: str
    message: str
    field: str | None = None  # the input field an INVALID_COMMAND names

    def as_dict(self) -> dict[str, Any]:
        found = {"line": self.line, "code": self.code, "clause": self.clause}
        found["message"] = self.message
        if self.field is not None:
            found["field"] = self.field
        return found

    def describe(self) -> str:
        clause = f" ({self.clause})" if self.clause else ""
        return f"line {self.line}: {self.code}{clause}: {self.message}"


@dataclass
class ImportReport:
    path: str
    batch_size: int
    lines_read: int = 0
    blank_lines: int = 0
    imported: int = 0
    already_imported: int = 0
    rejected: int = 0
    rejected_by_code: Counter[str] = field(default_factory=Counter)
    # Stored event rows: the command's domain events plus its idempotency record (a refused
    # command's record too, the first time it is refused).
    events_written: int = 0
    elapsed_s: float = 0.0
    rejects_path: str | None = None
    first_rejections: list[Rejection] = field(default_factory=list)

    @property
    def events_per_s(self) -> float:
        return self.events_written / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def add_rejection(self, rejection: Rejection) -> None:
        self.rejected += 1
        self.rejected_by_code[rejection.code] += 1
        if len(self.first_rejections) < MAX_LISTED_REJECTIONS:
            self.first_rejections.append(rejection)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "batch_size": self.batch_size,
            "lines_read": self.lines_read,
            "blank_lines": self.blank_lines,
            "imported": self.imported,
            "already_imported": self.already_imported,
            "rejected": self.rejected,
            "rejected_by_code": dict(sorted(self.rejected_by_code.items())),
            "events_written": self.events_written,
            "elapsed_s": round(self.elapsed_s, 3),
            "events_per_s": round(self.events_per_s, 1),
            "rejects_file": self.rejects_path,
            "first_rejections": [r.as_dict() for r in self.first_rejections],
        }

    def summary(self) -> str:
        lines = [
            f"lines read        {self.lines_read} ({self.blank_lines} blank)",
            f"imported          {self.imported}",
            f"already imported  {self.already_imported}",
            f"rejected          {self.rejected}",
        ]
        width = max(map(len, self.rejected_by_code), default=0)
        lines += [f"  {code:<{width}}  {n}" for code, n in sorted(self.rejected_by_code.items())]
        lines += [
            f"events written    {self.events_written}",
            f"elapsed           {self.elapsed_s:.2f} s ({self.events_per_s:.0f} events/s)",
        ]
        if self.rejects_path:
            lines.append(f"rejected lines in {self.rejects_path} (holds personal data: protect it)")
        return "\n".join(lines)


@dataclass(frozen=True)
class Item:
    """One command line, decoded: ``data`` is the command without ``at``."""

    line: int
    original: dict[str, Any]
    data: dict[str, Any]
    at: datetime | None


@dataclass(frozen=True)
class Bad:
    """A line rejected before it became a command: the parsed object if any, else the raw
    bytes (only for invalid JSON, so that the rejects file lets it be fixed)."""

    rejection: Rejection
    original: Any
    raw: bytes | None


REJECTS_EXIST_RULE = "names an existing file; choose a new path (it is never overwritten)"


def check_new_rejects_path(path: Path) -> None:
    """``InvalidCommand`` (``rejects``) if anything (a file, a link, a device) is at ``path``:
    for a caller that refuses before it opens the ledger. ``RejectsFile`` checks again as it
    creates the file (``O_EXCL``), so a file made in between is never overwritten."""
    if os.path.lexists(path):
        raise InvalidCommand("rejects", REJECTS_EXIST_RULE)


def check_rejects_place(path: Path) -> None:
    """``OSError`` naming ``path`` (missing directory, ``ENOENT``; not one this process may
    write in, ``EACCES``) if a rejects file could not be created there: checked before
    anything is imported, so an import does not stop at its first rejected line for it."""
    directory = path.parent
    if not directory.is_dir():
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))


class RejectsFile:
    """The rejects file, mode 0600, created new (``ledger.files``): never through a link,
    never over an existing file, so an earlier run's rejects file is kept. Created at the
    first rejected line, so a clean import leaves no file; the place is checked up front
    (``check_rejects_place``) so that an unwritable one fails before anything is imported.

    The default name takes the first free one of ``FILE.rejects.jsonl``,
    ``FILE.rejects.2.jsonl``, … at that moment; a path the caller chose must not exist, up
    front or then (``InvalidCommand`` on ``rejects``).
    """

    def __init__(self, path: Path, chosen: bool) -> None:
        if chosen:
            check_new_rejects_path(path)
        check_rejects_place(path)
        self.path, self.chosen = path, chosen
        self._out: IO[bytes] | None = None
        self.count = 0

    def _open(self) -> IO[bytes]:
        if self._out is None:
            if not self.chosen:
                self.path, self._out = create_numbered(self.path)
                return self._out
            try:
                self._out = create_new(self.path)
            except FileExistsError:
                raise InvalidCommand("rejects", REJECTS_EXIST_RULE) from None
        return self._out

    def write(self, rejection: Rejection, original: Any, raw: bytes | None = None) -> None:
        entry: dict[str, Any] = {**rejection.as_dict(), "command": original}
        if raw is not None:
            entry["raw"] = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        self._open().write(orjson.dumps(entry) + b"\n")
        self.count += 1

    def close(self) -> bool:
        """Close; True if there is a file (something was rejected)."""
        if self._out is not None:
            self._out.close()
        return self._out is not None


def check_batch_size(batch_size: int) -> int:
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise InvalidCommand("batch_size", f"must be between 1 and {MAX_BATCH_SIZE}")
    return batch_size


def default_rejects_path(path: Path) -> Path:
    """``some/dir/orders.jsonl`` → ``orders.rejects.jsonl`` in the current directory; any
    other name gets the suffix appended. Not beside the input: its directory may be one the
    user should not or cannot write in (``/etc``, ``/dev/fd`` for ``<(zcat orders.gz)``)."""
    base = path.name.removesuffix(".jsonl") if path.suffix == ".jsonl" else path.name
    return Path(f"{base}.rejects.jsonl")


def read_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes, int]]:
    """(line number, line or b"" if too long, bytes consumed), never holding more than
    ``MAX_LINE_BYTES`` of one line. A UTF-8 byte-order mark opening the file (editors on
    Windows write one) is not part of the first line."""
    number = 0
    while True:
        chunk = stream.readline(MAX_LINE_BYTES + 1)
        if not chunk:
            return
        number += 1
        consumed = len(chunk)
        if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
            consumed += _skip_rest_of_line(stream)
            chunk = b""
        if number == 1:
            chunk = chunk.removeprefix(codecs.BOM_UTF8)
        yield number, chunk, consumed


def _skip_rest_of_line(stream: IO[bytes]) -> int:
    skipped = 0
    while True:
        part = stream.readline(_SKIP_CHUNK_BYTES)
        skipped += len(part)
        if not part or part.endswith(b"\n"):
            return skipped


def parse_at(value: Any) -> datetime:
    """A line's own time: RFC 3339 text with an offset, as every time a command names."""
    try:
        moment = parse_moment(value)
    except ValueError as exc:
        raise InvalidCommand("at", str(exc)) from None
    # Not converted here: the ledger bounds it first (``check_command_time``), since the
    # conversion of a time at the edge of the calendar overflows.
    return moment


AT_DESCRIPTION = (
    "import only: when the command happened, an RFC 3339 date-time with an offset from "
    f"{utc_text(EARLIEST_COMMAND_TIME)} to now plus "
    f"{int(MAX_CLOCK_SKEW.total_seconds() // 60)} minutes, not before the last event of a "
    "stream the command writes (TIME_BEFORE_STREAM); without it the command happens now"
)


def import_line_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one line of an import file: a command
    (``command_schema()``, every object under ``$defs`` whose ``type`` is a constant) that
    may also carry ``"at"`` (``$defs/ImportTime``), the one field the import adds."""
    schema = command_schema()
    schema["title"] = "mall-ledger import line"
    schema["description"] = 'A command, optionally with "at", on one line of an import file.'
    defs: dict[str, Any] = schema["$defs"]
    for model in defs.values():
        if "const" in model.get("properties", {}).get("type", {}):
            model["properties"]["at"] = {"$ref": f"#/$defs/{IMPORT_TIME}"}
    defs[IMPORT_TIME] = moment_json_schema(AT_DESCRIPTION)
    return schema


NOT_JSON = "not valid JSON (UTF-8, one object per line)"
REPEATED_KEY = "an object with a repeated key (RFC 8259 section 4 leaves its meaning open)"
# Where a key ends: its closing quote, then a colon. Every key of a line's text matches once
# (a string value may match too), so a line with no more matches than its parsed objects have
# keys cannot repeat one.
_KEY_END = re.compile(rb'"[ \t\r\n]*:')


def _count_keys(value: Any) -> int:
    """Keys in every object of a parsed JSON value (a loop, not recursion: orjson reads
    nesting deeper than Python's recursion limit)."""
    keys, pending = 0, [value]
    while pending:
        found = pending.pop()
        if isinstance(found, dict):
            keys += len(found)
            pending += [v for v in found.values() if isinstance(v, dict | list)]
        elif isinstance(found, list):
            pending += [v for v in found if isinstance(v, dict | list)]
    return keys


def _no_repeated_key(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise ValueError(REPEATED_KEY)
    return found


def repeats_a_key(raw: bytes, parsed: Any) -> bool:
    """Whether the JSON text ``raw`` (which orjson parsed as ``parsed``; it keeps the last of
    a repeated key's values, silently) has an object with a repeated key. A quick count
    first (``_KEY_END``); only a line with more key ends than keys, i.e. one with a repeated
    key or with ``":`` inside a string, is parsed again, by the standard library, which
    reports every key."""
    if len(_KEY_END.findall(raw)) <= _count_keys(parsed):
        return False
    try:
        json.loads(raw, object_pairs_hook=_no_repeated_key)
    except ValueError:  # our REPEATED_KEY (JSONDecodeError cannot be: orjson read it)
        return True
    except RecursionError:  # nested deeper than the standard library goes (orjson: 1024);
        return False  # deeper than any command, so refused as a command anyway
    return False


def decode_line(number: int, raw: bytes) -> Item | Bad:
    """The command on one non-blank line, or why there is none."""
    if not raw:
        too_long = f"line longer than {MAX_LINE_BYTES} bytes"
        return Bad(Rejection(number, codes.LINE_TOO_LONG.code, "", too_long), None, None)
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return Bad(Rejection(number, codes.INVALID_JSON.code, "", NOT_JSON), None, raw)
    if repeats_a_key(raw, obj):
        return Bad(Rejection(number, codes.INVALID_JSON.code, "", REPEATED_KEY), None, raw)
    if not isinstance(obj, dict):
        return Bad(_rejection(number, InvalidCommand("line", "must be a JSON object")), obj, None)
    data = {k: v for k, v in obj.items() if k != "at"}
    try:
        at = parse_at(obj["at"]) if "at" in obj else None
    except InvalidCommand as exc:
        return Bad(_rejection(number, exc), obj, None)
    return Item(number, obj, data, at)


def _rejection(number: int, error: LedgerError) -> Rejection:
    field = error.field if isinstance(error, InvalidCommand) else None
    return Rejection(number, error.code, error.clause, error.message, field)


def prefetch_keys(ledger: Ledger, items: list[Item]) -> None:
    """Load the sealing keys the batch's new orders' accounts already have, in one round trip
    instead of one per order. Never creates one: a key is made only when an order that
    passed its checks seals its contact, so refused lines leave no key rows behind."""
    accounts = {
        item.data.get("account_no") for item in items if item.data.get("type") == "submit_order"
    }
    valid = []
    for account in accounts:
        if isinstance(account, str):
            with contextlib.suppress(InvalidCommand):  # its command will be refused by itself
                valid.append(validate_subject_id(account))
    if valid:
        # Only a warm-up: a key store problem shows up on the commands themselves.
        with contextlib.suppress(LedgerError):
            ledger.keystore.load_existing(valid)


class _Run:
    """State of one import: the report, the rejects file, the progress bar."""

    def __init__(
        self,
        ledger: Ledger,
        report: ImportReport,
        rejects: RejectsFile,
        bar: tqdm[Any],
        on_reject: Callable[[Rejection], None] | None,
    ) -> None:
        self.ledger = ledger
        self.report = report
        self.rejects = rejects
        self.bar = bar
        self.on_reject = on_reject

    def reject(self, rejection: Rejection, original: Any, raw: bytes | None = None) -> None:
        self.report.add_rejection(rejection)
        self.rejects.write(rejection, original, raw)
        if self.on_reject is not None:
            self.on_reject(rejection)

    def run_batch(self, entries: list[Item | Bad]) -> None:
        """Execute the batch's commands in one transaction, then account for every entry in
        line order (the rejects file stays sorted by line number)."""
        items = [e for e in entries if isinstance(e, Item)]
        outcomes: dict[int, CommandResult | LedgerError] = {}
        if items:
            prefetch_keys(self.ledger, items)
            results = self.ledger.execute_batch(
                [(item.data, item.at) for item in items], remember_refusals=True
            )
            outcomes = {item.line: r for item, r in zip(items, results, strict=True)}
        for entry in entries:
            if isinstance(entry, Bad):
                self.reject(entry.rejection, entry.original, entry.raw)
                continue
            outcome = outcomes[entry.line]
            if isinstance(outcome, CommandResult):
                self.count(outcome)
            else:
                self.reject(_rejection(entry.line, outcome), entry.original)
                self.report.events_written += outcome.recorded  # its command record
        self.bar.set_postfix(events=self.report.events_written, refresh=False)

    def count(self, result: CommandResult) -> None:
        if result.duplicate:
            self.report.already_imported += 1
        else:
            self.report.imported += 1
            self.report.events_written += len(result.events) + 1  # + the command's record


def import_file(
    ledger: Ledger,
    path: Path,
    batch_size: int = DEFAULT_BATCH_SIZE,
    rejects_path: Path | None = None,
    progress: bool = False,
    on_reject: Callable[[Rejection], None] | None = None,
) -> ImportReport:
    """Import every command line of ``path``; see the module docstring for the rules and
    ``import_opened`` for the arguments and errors."""
    with path.open("rb") as stream:
        return import_opened(
            ledger,
            stream,
            path,
            batch_size=batch_size,
            rejects_path=rejects_path,
            progress=progress,
            on_reject=on_reject,
        )


def import_opened(
    ledger: Ledger,
    stream: IO[bytes],
    path: Path,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    rejects_path: Path | None = None,
    progress: bool = False,
    on_reject: Callable[[Rejection], None] | None = None,
) -> ImportReport:
    """Import every command line of ``stream``, the file ``path`` opened once by the caller
    (a pipe or FIFO cannot be opened twice), read to its end.

    ``rejects_path`` None means the first free one of ``FILE.rejects.jsonl``,
    ``FILE.rejects.2.jsonl``, … in the current directory (``default_rejects_path``); a path
    given must not exist (``InvalidCommand`` on ``rejects``). Either is created only if a
    line is rejected. Raises OSError if the file cannot be read or the rejects file cannot
    be written (batches committed before that stay committed; a re-run gives their
    outcomes)."""
    check_batch_size(batch_size)
    report = ImportReport(str(path), batch_size)
    found = os.fstat(stream.fileno())
    # A new file: never the input, never an earlier run's rejects.
    if rejects_path is None:
        rejects = RejectsFile(default_rejects_path(path), chosen=False)
    else:
        rejects = RejectsFile(rejects_path, chosen=True)
    bar = tqdm(
        total=found.st_size if stat.S_ISREG(found.st_mode) else None,  # a pipe's is unknown
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc="import",
        disable=not progress,
        mininterval=0.5,
        leave=False,
    )
    started = time.perf_counter()
    try:
        _stream(_Run(ledger, report, rejects, bar, on_reject), stream, batch_size)
    finally:
        report.elapsed_s = time.perf_counter() - started
        bar.close()
        if rejects.close():
            report.rejects_path = str(rejects.path)
    return report


def _stream(run: _Run, stream: IO[bytes], batch_size: int) -> None:
    """Batches of ``batch_size`` lines (commands and rejected lines alike) or of
    ``MAX_BATCH_BYTES`` of input, whichever comes first, so memory stays bounded whatever
    the file holds."""
    batch: list[Item | Bad] = []
    held = 0
    for number, raw, consumed in read_lines(stream):
        run.report.lines_read += 1
        run.bar.update(consumed)
        if raw and not raw.strip():
            run.report.blank_lines += 1
            continue
        batch.append(decode_line(number, raw))
        held += len(raw)
        if len(batch) >= batch_size or held >= MAX_BATCH_BYTES:
            run.run_batch(batch)
            batch, held = [], 0
    run.run_batch(batch)
