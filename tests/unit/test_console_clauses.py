"""The clauses the console's timeline names (api/console/orders.py ``CLAUSES``) stay the
rulebook's: each is a clause docs/rules.md has a section for, each event it names is an order
event, and every order event has one (but ``OrderClosed``, which carries its own ground's)."""

from __future__ import annotations

import re
from pathlib import Path

from api.console.orders import CLAUSES
from ledger.domain.order import events

RULES = Path(__file__).resolve().parents[2] / "docs" / "rules.md"


def rulebook_clauses() -> set[str]:
    """Every clause a section heading of docs/rules.md names: ``## 3.1.4 and 7D art. 14 — …``
    names 3.1.4 and 7D art. 14, ``## 4.1, ECL 24/31, …`` names 4.1, ECL 24 and ECL 31."""
    found: set[str] = set()
    for line in RULES.read_text(encoding="utf-8").splitlines():
        if not line.startswith("## ") or " — " not in line:
            continue
        for part in re.split(r", | and ", line[3:].split(" — ")[0]):
            law, _, numbers = part.strip().rpartition(" ")
            for number in numbers.split("/"):
                found.add(f"{law} {number}".strip())
    return found


def order_events() -> set[str]:
    return {
        name
        for name, value in vars(events).items()
        if isinstance(value, type)
        and issubclass(value, events.OrderEvent)
        and value is not events.OrderEvent
    }


def test_every_clause_the_timeline_names_has_a_section_in_the_rulebook() -> None:
    named = {part.strip() for clauses in CLAUSES.values() for part in clauses.split(",")}
    assert named - rulebook_clauses() == set()


def test_the_rulebook_reading_finds_the_sections_it_should() -> None:
    assert {"3.1.2", "3.1.3", "3.1.4", "7D art. 14", "3.2", "4.1", "ECL 31"} <= rulebook_clauses()


def test_the_table_names_order_events_only_and_every_one_but_closure() -> None:
    assert set(CLAUSES) - order_events() == set()
    assert order_events() - set(CLAUSES) == {"OrderClosed"}
