"""Stores behind one interface (base.py): SQLite (embedded default), MongoDB (production)."""
from __future__ import annotations

from .base import Store


def open_store(settings) -> Store:
    """The store named by settings.store (a URL)."""
    url = settings.store
    if url.startswith("sqlite:///"):
        from .sqlite import SqliteStore, path_from_url
        return SqliteStore(path_from_url(url), blob_dir=settings.blob_dir,
                           synchronous=settings.sqlite_synchronous)
    if url.startswith(("mongodb://", "mongodb+srv://")):
        raise SystemExit("The MongoDB store is not available in this version of Med-Port yet; "
                         "use the embedded store (--store sqlite:///var/medport.db).")
    raise SystemExit(f"Unknown store URL {url!r}: use sqlite:///path/to/file.db or mongodb://host/db")
