"""Who sent a command is recorded on its record: the API key's id and role, or ``local``
(the CLI, an import, the demo); records written before actors were read as ``unrecorded``."""

from __future__ import annotations

from eventsourcing.persistence import StoredEvent

from ledger.application import Ledger
from ledger.domain.command_record import CommandRecord, CommandRecorded
from ledger.domain.context import Actor
from ledger.domain.errors import LedgerError
from ledger.domain.ids import command_record_id
from tests import builders as b


def record_of(ledger: Ledger, command_id: str) -> CommandRecord:
    found: CommandRecord = ledger.app.repository.get(command_record_id(command_id))
    return found


def test_a_command_sent_with_a_key_records_its_id_and_role(ledger_app: Ledger) -> None:
    submit = b.submit("A1")
    ledger_app.execute(submit, actor=Actor("k-7", "service"))
    assert record_of(ledger_app, submit["command_id"]).actor == {
        "key_id": "k-7",
        "role": "service",
    }


def test_a_command_run_locally_records_the_local_actor(ledger_app: Ledger) -> None:
    submit = b.submit("A2")
    ledger_app.execute(submit)
    assert record_of(ledger_app, submit["command_id"]).actor == {"key_id": None, "role": "local"}


def test_a_batch_records_each_commands_own_actor(ledger_app: Ledger) -> None:
    first, second = b.submit("A3"), b.submit("A4")
    results = ledger_app.execute_batch(
        [(first, None), (second, None)], actors=[Actor("k-1", "service"), Actor("k-2", "admin")]
    )
    assert not any(isinstance(r, LedgerError) for r in results)
    assert record_of(ledger_app, first["command_id"]).actor["key_id"] == "k-1"
    assert record_of(ledger_app, second["command_id"]).actor == {"key_id": "k-2", "role": "admin"}


def test_a_remembered_refusal_records_who_was_refused(ledger_app: Ledger) -> None:
    ledger_app.execute(b.submit("A5"))
    again = {**b.submit("A5"), "command_id": "again-A5"}
    results = ledger_app.execute_batch(
        [(again, None)], remember_refusals=True, actors=[Actor("k-9", "service")]
    )
    assert isinstance(results[0], LedgerError) and results[0].code == "ORDER_EXISTS"
    record = record_of(ledger_app, "again-A5")
    assert record.refusal is not None and record.actor["key_id"] == "k-9"


def test_a_record_stored_before_actors_reads_as_unrecorded(ledger_app: Ledger) -> None:
    submit = b.submit("A6")
    ledger_app.execute(submit)
    record = record_of(ledger_app, submit["command_id"])
    created = CommandRecorded(
        originator_id=command_record_id("old-cmd"),
        originator_version=1,
        timestamp=record.created_on,
        originator_topic=record.TOPIC,
        command_id="old-cmd",
        command_type="submit_order",
        payload_digest="d",
        outcome={"events": [], "result": {}},
        actor={},
    )
    mapper = ledger_app.app.mapper
    stored = mapper.to_stored_event(created)
    state = mapper.transcoder.decode(stored.state)
    del state["actor"]
    state["class_version"] = 1
    ledger_app.app.recorder.insert_events(
        [
            StoredEvent(
                stored.originator_id,
                stored.originator_version,
                stored.topic,
                mapper.transcoder.encode(state),
            )
        ]
    )
    assert record_of(ledger_app, "old-cmd").actor == {"key_id": None, "role": "unrecorded"}
