"""``ledger projections skip NAME POSITION``: leave a poison event out of one projection.

The operator's way to resume a projection stopped on an event it cannot apply when no fix
of the code will make it apply (``projections.poison``). The skip is recorded with the
projection's code version (``pj_skips``: position, topic, reason, when); a rebuild or check
by that version leaves the event out too, so it compares like with like, and a new version
(a rebuild) applies it again.
"""

from __future__ import annotations

from ledger.domain import codes
from ledger.domain.errors import InvalidCommand, LedgerError
from projections.base import Projection
from projections.engine import Runtime, ensure_live
from projections.poison import Halt, clear_halt, read_halts, record_skip
from projections.schema import LIVE
from projections.tracking import tracking_name


class ProjectionNotStopped(LedgerError):
    """A skip asked of a projection that is not stopped: there is nothing to leave out."""

    catalogued = codes.PROJECTION_NOT_STOPPED


def skip(rt: Runtime, projection: Projection, position: int) -> Halt:
    """Leave the event at ``position`` out of ``projection``, which must be stopped there:
    record the skip, clear the halt and move the projection past the event, in one
    transaction under its tracking row's lock; a running worker takes the projection up
    again at its next batch.

    Raises ``ProjectionNotStopped`` if the projection is not stopped, ``InvalidCommand``
    (POSITION) if it is stopped elsewhere.
    """
    db = rt.db
    ensure_live(db, rt.tracking, [projection])
    name = tracking_name(projection.name, LIVE)
    with db.write() as cur:
        rt.tracking.read(cur, [name], lock=True)
        halt = read_halts(db, cur).get(name)
        if halt is None:
            raise ProjectionNotStopped(
                f"projection {projection.name} is not stopped: there is no event to skip"
            )
        if halt.position != position:
            raise InvalidCommand(
                "POSITION",
                f"projection {projection.name} is stopped at position {halt.position}",
            )
        record_skip(db, cur, projection.name, projection.version, halt)
        clear_halt(db, cur, name)
        rt.tracking.advance(cur, name, position)
    return halt
