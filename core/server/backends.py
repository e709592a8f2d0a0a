"""A collector store by URL: SQLite (the default) or PostgreSQL (psycopg, an optional dependency,
imported only when a PostgreSQL URL is given)."""

from __future__ import annotations

from typing import Any

from tracewire.server.store import Store, sqlite_path
from tracewire.server.store_sqlite import SQLiteStore


def open_store(url: str, **options: Any) -> Store:
    """`sqlite:///relative.db`, `sqlite:////abs/path.db`, a bare file path, or `postgresql://...`."""
    if url.startswith(("postgresql://", "postgres://")):
        from tracewire.server.store_postgres import PostgresStore

        return PostgresStore(url, **options)
    return SQLiteStore(sqlite_path(url))
