"""The upgrade checklist past eventsourcing 9.5: every place the ledger relies on the library's
internals rather than its public API, each with a contract test
(tests/integration/test_library_contract.py, on SQLite and PostgreSQL).

- ``settings.library_env``: the library's environment keys, our recorders loaded by topic
  (``APPLICATION_RECORDER_TOPIC``) and our datastore factory (``PERSISTENCE_MODULE``).
- ``pg_factory``: the library's PostgreSQL factory with its datastore's pool replaced.
- ``pg_recorder``, ``sqlite_recorder``: subclasses of the library's application recorders
  overriding private hooks (``_insert_events``, ``_insert_stored_events``, ``_lock_table``,
  ``_notify_channel``), and ``read_check``: the keyword ``events.put`` passes to them.
- ``bulk_read``: raw SQL on the library's events table through its datastore.
- ``tables``: the names and columns of the library's tables our own SQL reads, and the channel
  it NOTIFYs on (projections/db.py, db_postgres.py, db_sqlite.py: the event reader, the wake-up,
  the tracking rows).
- ``tracking``: the library's tracking recorder, its private ``_insert_tracking`` and its
  table's name.
- ``transcoder``: the library's JSON wire format (``_type_``/``_data_`` tags), written by orjson.

Outside this package, ``projections/events.py``'s ``Decoder`` reads the stored state as the
library's mapper writes it (a ``class_version`` key, ``upcast_vN_vN+1`` methods, the mapper's
cipher and compressor); its contract test is here too. Nothing outside this package imports
or calls a private name of the library.
"""
