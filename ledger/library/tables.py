"""Names and columns of the library's tables that our own SQL reads (projections/db_*.py,
projections/tracking.py). The library makes them; a release that renames one breaks us here."""

from __future__ import annotations

# The events table: ``<application name>_events`` in the ``public`` schema on PostgreSQL
# (the application is named ``ledger``), ``stored_events`` on SQLite.
PG_SCHEMA = "public"
PG_EVENTS_TABLE = "ledger_events"
SQLITE_EVENTS_TABLE = "stored_events"
# The log position: a column of its own on PostgreSQL, the table's rowid on SQLite; positions
# are issued in commit order (under the library's table lock on PostgreSQL).
PG_POSITION_COLUMN = "notification_id"
SQLITE_POSITION_COLUMN = "rowid"
EVENT_COLUMNS = ("topic", "originator_id", "originator_version", "state")
# The channel the library's PostgreSQL recorder NOTIFYs on each insert: the events table's name.
PG_EVENTS_CHANNEL = PG_EVENTS_TABLE
# The tracking table: one row per name, (application_name, notification_id).
TRACKING_COLUMNS = ("application_name", "notification_id")
