"""The values the storage interface passes (storage/base.py), in a module of their own that imports
nothing of any store: interactions, search and every backend share them (base.py re-exports them)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

# Index rows by kind, e.g. {"token": [("identifier", "http://sys", "123"), ...]}.
# fhirserver.search.extract produces them; each backend lays them out natively.
IndexEntries = Mapping[str, Sequence[tuple]]


@dataclass(frozen=True)
class Version:
    """One stored version of one resource."""
    type: str
    id: str
    version: int
    last_updated: str          # FHIR instant, UTC
    method: str                # POST | PUT | PATCH | DELETE: how it was written
    body: bytes | None         # compact JSON; None for a delete
    blob: str | None = None    # key in the BlobStore (Binary contents)

    @property
    def deleted(self) -> bool:
        return self.method == "DELETE"


@dataclass(frozen=True)
class Page:
    """A page of versions plus an opaque cursor for the next page (None: last page)."""
    items: list[Version]
    next_cursor: str | None = None
    total: int | None = None


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    sha256: str


@dataclass
class Write:
    """A new version to store: the interaction has already set id, meta and validated it."""
    type: str
    id: str
    version: int
    last_updated: str
    method: str
    body: bytes | None
    index: IndexEntries = field(default_factory=dict)
    blob: str | None = None

    @property
    def expected_version(self) -> int:
        """Versions are consecutive: the new version n requires n-1 to be current (0: none)."""
        return self.version - 1
