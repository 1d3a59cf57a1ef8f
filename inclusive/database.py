"""Engine settings that depend on the database: SQLite is made to behave like a real one."""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from sqlalchemy import Engine, event
from sqlalchemy.exc import SQLAlchemyError

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


#: Requests that only read (RFC 9110's safe methods).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _transaction_began(session: Any, transaction: Any, connection: Any) -> None:
    connection.info["wrote"] = False


def _note_writes(
    connection: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    # Anything but a plain SELECT counts as a write (a WITH, a SET, DML): the safe side.
    if statement.lstrip()[:6].upper() != "SELECT":
        connection.info["wrote"] = True


def end_reads_with_commit(app: Flask) -> None:
    """End a safe request's transaction with COMMIT, not ROLLBACK, when it only read.

    psycopg drops every prepared statement of a connection at each ROLLBACK (it cannot tell
    which of them the rolled-back transaction made), and a request's session ends with one:
    each page's statements were parsed and planned again at every request, the planning
    costing PostgreSQL more than running them (1.9 ms for the login read, ~1.5 ms for the
    program page's bundle, against 0.3 and 0.9 ms of execution). Committing a transaction
    that wrote nothing changes nothing in the database and keeps them prepared (psycopg
    prepares a statement at its fifth execution on a connection). A request that wrote, or
    holds unflushed changes, or failed, ends as before, with a rollback. A request's
    teardown runs before the app context's, where Flask-SQLAlchemy removes the session.
    """
    from flask_sqlalchemy.session import Session

    if not event.contains(Session, "after_begin", _transaction_began):
        event.listen(Session, "after_begin", _transaction_began)
    with app.app_context():
        engine: Engine = db.engine
        if not event.contains(engine, "before_cursor_execute", _note_writes):
            event.listen(engine, "before_cursor_execute", _note_writes)

    @app.teardown_request
    def _commit_reads(exc: BaseException | None) -> None:
        if exc is not None or request.method not in SAFE_METHODS:
            return
        if not db.session.registry.has():
            return
        session = db.session()
        if not session.in_transaction() or session.new or session.dirty or session.deleted:
            return
        try:
            wrote = session.connection().info.get("wrote", True)
        except SQLAlchemyError:  # a connection already closed (a test's, say): nothing to keep
            return
        if wrote:
            return
        try:
            session.commit()
        except Exception:  # the session's own teardown rolls back and closes
            session.rollback()
