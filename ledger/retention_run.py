"""The retention run (issue 11, item 10; PIPL 47, ECL 31, agreement 4.1.2): apply what is due
as of the injected clock (ledger/clock.py), subject by subject.

Per data subject, decided from its lifecycle stream as stored now (ledger/domain/data_subject.py)
and, for its open orders, from the log:

- ``keys``: an erasure recorded (``SubjectErased``) whose keys still exist: a process ended
  between the save and the destroy (ledger/erasure.py). The keys are destroyed.
- ``erased``: an erasure deferred for a retention (``ErasureDeferred``) whose date has passed
  and no hold on: ``SubjectErased`` is saved, then the keys destroyed. A retention that grew
  meanwhile defers it again (``deferred``); a hold placed meanwhile keeps it waiting
  (``held``, nothing written), and so does an order of the subject still open or reopened
  by an after-sales case (``waiting``: its completion schedules a retention that defers the
  erasure again).
- ``deidentified``: orders completed, no order of the subject still open, no after-sales
  case open, no hold, not yet done: the subject's direct-identifier key generation is
  retired (its new orders get the next one, ledger/keystore.py), then
  ``DirectIdentifiersRemoved`` names the orders and the retired generations (with the
  restriction the ended purpose brings while a retention runs: ``restricted``); the views
  blank those orders' direct identifiers.
- linkage year keys due (``expire_linkage``: year Y's on 1 January Y+2), before any subject,
  not counted (they are no subject's);
- ``direct_keys``: retired generations whose ``DIRECT_KEY_GRACE`` has passed (no process can
  still be sealing a new order under them), while still nothing is open and no hold is on,
  are destroyed: every name, phone and address sealed under them is unreadable for good.

Each step is one save of the subject's stream (its events, one transaction) and then its
effect outside the log; both are decided afresh from the stream each run, so a run done twice
does each step once, and a run killed anywhere (``kill -9``) is finished by the next: a step
saved is seen as done, a step not saved is done then, a key not yet destroyed is destroyed
then. Saves are optimistic: a subject another writer changed meanwhile is left for the next
run (``clashed``).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eventsourcing.persistence import IntegrityError

from ledger.application import Ledger
from ledger.domain.context import LOCAL_ACTOR, Ctx
from ledger.domain.data_subject import DataSubject, DataSubjectRegistered
from ledger.domain.ids import data_subject_id
from ledger.driver_errors import storage_errors
from ledger.erasure import destroy_keys
from ledger.key_admin import expire_linkage
from ledger.library.bulk_read import load_streams
from ledger.open_orders import events_of_topics, open_orders_by_subject

# Kinds of step, in the order the summary lists them.
KINDS = (
    "erased",
    "keys",
    "deferred",
    "held",
    "waiting",
    "deidentified",
    "direct_keys",
    "restricted",
    "clashed",
)
LOAD_CHUNK = 200  # subject streams rebuilt per query


@dataclass
class RetentionSummary:
    """What a run did (or, with ``dry_run``, would do): steps per kind, subjects looked at."""

    at: datetime
    dry_run: bool
    subjects: int = 0
    steps: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "dry_run": self.dry_run,
            "subjects": self.subjects,
            "steps": {kind: self.steps.get(kind, 0) for kind in KINDS},
        }


def run_retention(
    ledger: Ledger,
    *,
    dry_run: bool = False,
    progress: Callable[[Iterator[str], int], Iterator[str]] | None = None,
) -> RetentionSummary:
    """Apply every step due at ``ledger.clock.now()`` (see the module); ``dry_run`` decides
    and counts without writing or destroying anything. ``progress`` wraps the iteration over
    subjects (a tqdm bar). Raises StorageUnavailable if the database fails; what was saved
    before stays saved and the next run goes on from there."""
    at = ledger.clock.now()
    summary = RetentionSummary(at, dry_run)
    run_id = f"retention-run-{uuid.uuid4().hex}"
    with storage_errors():
        if not dry_run:  # linkage year keys due (README "Linkage"), whatever else is due
            expire_linkage(ledger.keystore, at)
        subjects = subject_ids(ledger)
        open_orders = open_orders_by_subject(ledger.app)
        summary.subjects = len(subjects)
        walk: Iterator[str] = iter(subjects)
        if progress is not None:
            walk = progress(walk, len(subjects))
        for chunk in _chunks(walk, LOAD_CHUNK):
            ids = [data_subject_id(subject_id) for subject_id in chunk]
            loaded = load_streams(ledger.app, ids)
            for stream in ids:
                subject = loaded[stream]
                if isinstance(subject, DataSubject):
                    ctx = Ctx(run_id, at, LOCAL_ACTOR)
                    step_subject(ledger, subject, ctx, open_orders, summary)
    return summary


def step_subject(
    ledger: Ledger,
    subject: DataSubject,
    ctx: Ctx,
    open_orders: dict[str, set[str]],
    summary: RetentionSummary,
) -> None:
    """The steps due for one subject (``run_retention``), counted in ``summary``."""
    subject_id = subject.subject_id
    # A step is counted once it is done (saved, or its key destroyed by this run): two runs
    # at once each count only what they did, and a clash is counted as a clash alone.
    if subject.erased is not None:
        if not ledger.keystore.is_destroyed(subject_id) and (
            summary.dry_run or destroy_keys(ledger.keystore, subject_id, subject.erased["at"])
        ):
            summary.steps["keys"] += 1
        return
    waiting = open_orders.get(subject_id, set())
    if subject.erasure_due(ctx.at):
        if waiting or subject.case_open:  # its completion will defer the erasure again
            summary.steps["waiting"] += 1
            return
        outcome = subject.complete_erasure(ctx)["outcome"]
        if outcome == "waiting":
            summary.steps["held"] += 1
        elif summary.dry_run or _saved(ledger, subject, summary):
            summary.steps[outcome] += 1
            if outcome == "erased" and not summary.dry_run:
                destroy_keys(ledger.keystore, subject_id, ctx.at)
        return
    if not subject.deidentification_due(waiting):
        _destroy_retired_keys(ledger, subject, ctx.at, waiting, summary)
        return
    restricted_before = subject.restriction
    # Retired before the event is saved: a run killed between the two has only made a
    # generation early, and the next run retires again and names both.
    retired = [] if summary.dry_run else ledger.keystore.retire_direct(subject_id)
    subject.remove_direct_identifiers(ctx, waiting, retired)
    if summary.dry_run or _saved(ledger, subject, summary):
        summary.steps["deidentified"] += 1
        if subject.restriction is not restricted_before:
            summary.steps["restricted"] += 1
        _destroy_retired_keys(ledger, subject, ctx.at, waiting, summary)  # retired earlier


def _destroy_retired_keys(
    ledger: Ledger,
    subject: DataSubject,
    at: datetime,
    open_orders: set[str],
    summary: RetentionSummary,
) -> None:
    """Destroy the subject's retired direct-identifier generations that are due and still
    live (``DataSubject.direct_keys_due``); counted once per subject."""
    due = subject.direct_keys_due(at, open_orders)
    live = [k for k in due if not ledger.keystore.kind_destroyed(subject.subject_id, k)]
    if not live:
        return
    if summary.dry_run or ledger.keystore.destroy_kinds(subject.subject_id, live, at):
        summary.steps["direct_keys"] += 1


def _saved(ledger: Ledger, subject: DataSubject, summary: RetentionSummary) -> bool:
    """Save the subject's new events (not on a dry run); False if nothing was saved."""
    if summary.dry_run:
        return False
    try:
        ledger.app.save(subject)
    except IntegrityError:  # another writer moved the stream: the next run decides again
        summary.steps["clashed"] += 1
        return False
    return True


def subject_ids(ledger: Ledger) -> list[str]:
    """Every data subject with a lifecycle stream, from the log, sorted."""
    topic = DataSubjectRegistered.TOPIC  # type: ignore[attr-defined]
    found = {event.subject_id for event in events_of_topics(ledger.app, topic)}
    return sorted(found)


def _chunks(items: Iterator[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
