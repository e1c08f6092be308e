"""``ledger order show ORDER_NO [--json]``: an order's projected state and its events.

The state is the ``orders`` read model's row (and the order's refunds from ``payments``), as
far as the projections have got (``ledger projections run`` keeps them current); the events
come from the log itself. Personal fields stay sealed (``s2:…`` tokens), as they are stored.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cli.args import add_database_url, add_json, identifier
from cli.exits import Exit
from cli.invoked import invoked_as
from ledger.application import open_ledger
from ledger.domain.errors import NotFound
from ledger.domain.ids import order_id
from ledger.settings import Settings
from projections.queries import ReadModels

# Fields every stored event has; shown once per event, not among its facts.
EVENT_HEADER = ("originator_id", "originator_version", "timestamp")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("order", help="look at one order")
    sub = parser.add_subparsers(dest="order_command", required=True, metavar="ACTION")
    show = sub.add_parser(
        "show",
        help="an order's projected state and its events (personal fields sealed)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    show.add_argument(
        "order_no",
        metavar="ORDER_NO",
        type=identifier,
        help="the order number (1 to 128 of A-Z a-z 0-9 . _ : / @ + -, as commands take it)",
    )
    add_json(show, "the state and events (one object)")
    add_database_url(show)
    show.set_defaults(run=cmd_show)


def event_dict(event: Any) -> dict[str, Any]:
    facts = {k: v for k, v in vars(event).items() if k not in EVENT_HEADER}
    return {
        "version": event.originator_version,
        "at": event.timestamp,
        "event": type(event).__name__,
        "facts": facts,
    }


def order_report(order_no: str, settings: Settings) -> dict[str, Any]:
    """The order's events from the log and its rows in the read models; NotFound without
    events."""
    ledger = open_ledger(settings.database_url, create=False, policy=settings.policy)
    try:
        events = [event_dict(e) for e in ledger.app.events.get(order_id(order_no))]
    finally:
        ledger.close()
    if not events:
        raise NotFound(f"order {order_no} has no events")
    models = ReadModels.open(settings.database_url)
    try:
        state = models.order(order_no)
        refunds = models.refunds(order_no)
    finally:
        models.close()
    return {"order_no": order_no, "state": state, "refunds": refunds, "events": events}


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    report = order_report(args.order_no, settings)
    if args.json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False, default=str) + "\n")
        return Exit.OK
    state = report["state"]
    if state is None:
        print(f"order {args.order_no}: not projected yet ({invoked_as()} projections run --once)")
    else:
        print(f"order {args.order_no}")
        for key, value in state.items():
            print(f"  {key}: {value}")
    for refund in report["refunds"]:
        print(f"  refund {refund.get('refund_id')}: {json.dumps(refund, default=str)}")
    print(f"events ({len(report['events'])})")
    for event in report["events"]:
        facts = json.dumps(event["facts"], ensure_ascii=False, default=str)
        print(f"  {event['version']:>3} {event['at']} {event['event']} {facts}")
    return Exit.OK
