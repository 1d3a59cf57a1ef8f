"""Engine settings that depend on the database: SQLite is made to behave like a real one."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import Engine, event

from inclusive.extensions import db


def _sqlite_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # Let SQLAlchemy, not pysqlite, decide where transactions begin: savepoints then work.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")  # SQLite ignores foreign keys unless told
    cursor.execute("PRAGMA busy_timeout = 5000")  # the worker and the web server share the file
    cursor.execute("PRAGMA journal_mode = WAL")  # readers do not wait for the writer
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN")


def configure_engines(app: Flask) -> None:
    """Attach per-dialect settings to the app's engines."""
    with app.app_context():
        engine: Engine = db.engine
        if engine.dialect.name == "sqlite" and not event.contains(
            engine, "connect", _sqlite_connect
        ):
            event.listen(engine, "connect", _sqlite_connect)
            event.listen(engine, "begin", _sqlite_begin)
