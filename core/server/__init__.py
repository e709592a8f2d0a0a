"""The tracewire collector (`tracewire serve`, extra `tracewire[server]`).

Authenticated, idempotent ingestion of schema-1 events over HTTP into SQLite or PostgreSQL, and the
read API that `tracewire traces/show --server URL` use. The wire protocol is in `wire.py` and
docs/collector.md. Importing this package imports neither FastAPI nor a database driver.
"""
