"""Day partitions of the PostgreSQL store: `events` and `event_text` are partitioned by RANGE on their
event time (unix ns), one partition per UTC day, named `events_pYYYYMMDD` / `event_text_pYYYYMMDD`.

A partitioned table's unique key must hold the partition key, so events are unique by (project, id, time)
rather than (project, id). Ingestion stays idempotent: the SDK resends an event with the same body, so
the same time, and the resent row hits the key. (Two different events that share an id but not a time
would both be stored; ids are random 128-bit values, so only a client that makes them up could do that.)

Partitions are created on demand, before a batch's insert, in a transaction of their own under an
advisory lock (replicas share the database); each process remembers the days it knows exist. Retention
drops whole day partitions (tracewire.server.retention).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

DAY_NS = 86_400 * 10**9
_MAX_NS = 2**63 - 1  # the bigint column's bound: the last day's partition ends at MAXVALUE
PARTITIONED = ("events", "event_text")
PARTITION_LOCK = 0x7472_6163_6570  # pg_advisory_xact_lock key of partition DDL
_NAME = re.compile(r"^(events|event_text)_p(\d{8})$")


def day_of(time_ns: int) -> int:
    """The UTC day (days since the epoch) an event time falls in."""
    return time_ns // DAY_NS


def _suffix(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).strftime("%Y%m%d")


def day_from_name(name: str) -> int | None:
    """The day a partition's name stands for; None for any other table."""
    m = _NAME.match(name)
    if m is None:
        return None
    return (dt.datetime.strptime(m.group(2), "%Y%m%d").date() - dt.date(1970, 1, 1)).days


def create_days(conn: Any, days: Iterable[int]) -> None:
    """Create the partitions of these days that do not exist yet, in the caller's transaction. The lock
    keeps replicas from creating the same one at once. A partition is made apart and then attached:
    ATTACH takes a SHARE UPDATE EXCLUSIVE lock on the parent, which lets inserts and reads go on, where
    CREATE TABLE ... PARTITION OF would wait for them all and hold up every new one meanwhile."""
    wanted = sorted(set(days))
    if not wanted:
        return
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK,))
    for day in wanted:
        low = day * DAY_NS
        high = "MAXVALUE" if low + DAY_NS > _MAX_NS else str(low + DAY_NS)
        for table in PARTITIONED:
            name = f"{table}_p{_suffix(day)}"
            if conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is not None:
                continue
            conn.execute(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS)")
            # the new table is empty: checking its rows against the bounds is instant
            conn.execute(f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ({low}) TO ({high})")


def existing_days(conn: Any) -> dict[int, list[str]]:
    """Each day's partitions, by day."""
    out: dict[int, list[str]] = {}
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = ANY(%s)"
        " AND p.relnamespace = current_schema()::regnamespace", (list(PARTITIONED),)).fetchall()
    for (name,) in rows:
        day = day_from_name(name)
        if day is not None:
            out.setdefault(day, []).append(name)
    return out


def partition_migration(conn: Any) -> None:
    """Migration 5 on PostgreSQL: `events` and `event_text` become day-partitioned tables, their rows
    carried over (search rows take their trace's start as their time: they had none), plus the indexes
    retention deletes by. Runs in the migration's transaction: all of it or nothing."""
    conn.execute("ALTER TABLE events RENAME TO events_v4")
    conn.execute("ALTER TABLE events_v4 RENAME CONSTRAINT events_pkey TO events_v4_pkey")
    conn.execute("ALTER INDEX events_trace RENAME TO events_v4_trace")
    conn.execute("ALTER TABLE events_v4 ALTER COLUMN seq DROP DEFAULT")
    conn.execute("ALTER SEQUENCE events_seq_seq OWNED BY NONE")  # the new table keeps numbering on
    conn.execute("CREATE TABLE events (seq bigint NOT NULL DEFAULT nextval('events_seq_seq'),"
                 " project text NOT NULL, id text NOT NULL, trace_id text NOT NULL, time bigint NOT NULL,"
                 " body text NOT NULL, PRIMARY KEY (project, id, time)) PARTITION BY RANGE (time)")
    conn.execute("ALTER SEQUENCE events_seq_seq OWNED BY events.seq")
    conn.execute("CREATE INDEX events_trace ON events (project, trace_id)")
    conn.execute("ALTER TABLE event_text RENAME TO event_text_v4")
    conn.execute("ALTER INDEX event_text_words RENAME TO event_text_v4_words")
    conn.execute("CREATE TABLE event_text (project text NOT NULL, trace_id text NOT NULL, text text NOT NULL,"
                 " time bigint NOT NULL) PARTITION BY RANGE (time)")
    conn.execute("CREATE INDEX event_text_words ON event_text USING gin (to_tsvector('simple', text))")
    conn.execute("CREATE INDEX event_text_trace ON event_text (project, trace_id)")
    days = [int(d) for (d,) in conn.execute(
        "SELECT DISTINCT time / %s FROM events_v4", (DAY_NS,)).fetchall()]
    create_days(conn, days)
    conn.execute("INSERT INTO events (seq, project, id, trace_id, time, body)"
                 " SELECT seq, project, id, trace_id, time, body FROM events_v4")
    conn.execute("INSERT INTO event_text (project, trace_id, text, time) SELECT x.project, x.trace_id, x.text,"
                 " t.start_ns FROM event_text_v4 x JOIN traces t USING (project, trace_id)")
    conn.execute("DROP TABLE events_v4, event_text_v4")
    # retention: traces by age across projects, and a deleted trace's facets; the listing's user filter
    conn.execute("CREATE INDEX traces_age ON traces (start_ns)")
    conn.execute("CREATE INDEX traces_user ON traces (project, user_id)")
    conn.execute("CREATE INDEX trace_facets_trace ON trace_facets (project, trace_id)")
