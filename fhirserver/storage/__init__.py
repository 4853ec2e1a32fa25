"""Stores behind one interface (base.py): SQLite (embedded default), MongoDB (production)."""
from __future__ import annotations

from .base import Store


def open_store(settings) -> Store:
    """The store named by settings.store (a URL)."""
    url = settings.store
    if url.startswith("sqlite:///"):
        from .sqlite import SqliteStore, path_from_url
        return SqliteStore(path_from_url(url), blob_dir=settings.blob_dir,
                           synchronous=settings.sqlite_synchronous,
                           read_cache_mib=settings.sqlite_read_cache_mib)
    if url.startswith(("mongodb://", "mongodb+srv://", "mongomock://")):
        from .mongo import open_mongo
        return open_mongo(url)
    raise SystemExit(f"Unknown store URL {url!r}: use sqlite:///path/to/file.db or mongodb://host/db")
