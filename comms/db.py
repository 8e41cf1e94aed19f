"""The database engine and the unit-of-work session scope."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


class Database:
    """One engine and session factory per process. SQLite gets WAL and a busy timeout so the API
    and the workers (separate processes) can write the same file without "database is locked"."""

    def __init__(self, url: str, *, pool_size: int = 10):
        self.url = url
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(self.engine, "connect", _sqlite_pragmas)
            # A deferred BEGIN that later writes can fail at once with "database is locked" when another
            # process wrote meanwhile (busy_timeout cannot help an upgrade); IMMEDIATE takes the write lock
            # up front and waits for it. WAL keeps other processes' readers unblocked.
            event.listen(self.engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        else:
            self.engine = create_engine(
                url, pool_size=pool_size, max_overflow=pool_size * 2, pool_pre_ping=True
            )
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits when the block ends cleanly, rolls back when it raises."""
        with self.sessionmaker() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Hand transaction control to SQLAlchemy's "begin" hook above (pysqlite's legacy mode is buggy).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def bulk_insert(session: Session, table, rows: list[dict]) -> None:
    """Insert many rows into a Core ``table`` in the session's transaction.

    On PostgreSQL this is one COPY (an order of magnitude faster than executemany for a 1,000-row
    batch); elsewhere SQLAlchemy's executemany.
    """
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(table.insert(), rows)
        return
    columns = list(rows[0])
    names = ", ".join(f'"{c}"' for c in columns)
    cursor = connection.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])
