"""Similarity index stores: SQLite by default, PostgreSQL with pgvector for teams.

`open_store` resolves where the index lives:
1. the url argument (the CLI passes `--db` / RETRO_DATABASE_URL),
2. the RETRO_DATABASE_URL environment variable,
3. `index.db` in the user data directory (RETRO_USER_PATH overrides that directory).

URLs: `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`, `sqlite:///:memory:`, a plain
file path, or `postgresql://user:pass@host:port/db`.
"""

from __future__ import annotations

from pathlib import Path

from retro.errors import StoreError
from retro.index.store.base import (
    Chunk,
    Hit,
    IncidentRecord,
    IndexedAction,
    SearchFilter,
    Store,
    StoreStats,
)

__all__ = [
    "Chunk",
    "Hit",
    "IncidentRecord",
    "IndexedAction",
    "SearchFilter",
    "Store",
    "StoreError",
    "StoreStats",
    "default_index_path",
    "index_exists",
    "open_store",
    "resolve_url",
    "user_dir",
]


def user_dir() -> Path:
    """retro's per-user data directory; RETRO_USER_PATH overrides it."""
    from retro.config import user_dir as config_user_dir

    return config_user_dir()


def default_index_path() -> Path:
    return user_dir() / "index.db"


def resolve_url(url: str | None = None) -> str:
    """The database URL to use: the argument, RETRO_DATABASE_URL, or the default SQLite file."""
    from retro.config import settings

    url = url or settings().database_url or None
    return url or f"sqlite:///{default_index_path()}"


def index_exists(url: str | None = None) -> bool:
    """True when an index is configured: a Postgres URL, or an existing SQLite file."""
    resolved = resolve_url(url)
    if resolved.startswith(("postgresql://", "postgres://")):
        return True
    path = _sqlite_path(resolved)
    return path == ":memory:" or Path(path).is_file()


def _sqlite_path(url: str) -> str:
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///") :] or ":memory:"
    if url.startswith("sqlite://"):
        raise StoreError(
            f"Unsupported SQLite URL {url!r}",
            hint="write sqlite:///relative.db or sqlite:////absolute/path.db",
        )
    return url


def open_store(url: str | None = None) -> Store:
    """Open (and migrate) the index named by url, RETRO_DATABASE_URL or the default path."""
    resolved = resolve_url(url)
    if resolved.startswith(("postgresql://", "postgres://")):
        try:
            from retro.index.store.postgres import PostgresStore
        except ImportError as exc:
            raise StoreError(
                "PostgreSQL support needs psycopg and pgvector",
                hint="pip install 'psycopg[binary]' pgvector",
            ) from exc
        return PostgresStore(resolved)
    if "://" in resolved and not resolved.startswith("sqlite:"):
        scheme = resolved.split("://", 1)[0]
        raise StoreError(
            f"Unsupported database URL scheme {scheme!r} in RETRO_DATABASE_URL",
            hint="use sqlite:///path/to/index.db or postgresql://user@host/db",
        )
    from retro.index.store.sqlite import SQLiteStore

    return SQLiteStore(_sqlite_path(resolved))
