"""Blob files on local disk (Binary contents).

A blob is streamed to a temporary file while its SHA-256 is computed, fsynced,
then renamed to blobs/ab/<key>: a crash leaves either no blob or a whole one.
Every upload gets its own random key, so a refused write can delete its blob
without touching another request's identical upload.
"""
from __future__ import annotations

import os
import secrets
import tempfile
import time
from typing import BinaryIO, Iterator

from ..errors import NotFound
from .base import BlobInfo, BlobStore, Metered


class FileBlobStore(BlobStore):
    def __init__(self, root: str):
        self.root = root
        os.makedirs(os.path.join(root, "tmp"), exist_ok=True)

    def _path(self, key: str) -> str:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise NotFound(f"No blob {key!r}")
        return os.path.join(self.root, key[:2], key)

    def put(self, chunks: Iterator[bytes], max_bytes: int) -> BlobInfo:
        metered = Metered(chunks, max_bytes)
        fd, tmp = tempfile.mkstemp(dir=os.path.join(self.root, "tmp"))
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in metered:
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            key = secrets.token_hex(32)
            final = self._path(key)
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.replace(tmp, final)
            return metered.info(key)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError:
            raise NotFound(f"Binary content {key} is missing from the blob store") from None

    def size(self, key: str) -> int:
        return os.path.getsize(self._path(key))

    def delete(self, key: str) -> None:
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            pass

    def keys(self, min_age_s: float = 0) -> Iterator[str]:
        """Keys of stored blobs at least min_age_s old (uploads still in flight are younger)."""
        now = time.time()
        for sub in sorted(os.listdir(self.root)):
            folder = os.path.join(self.root, sub)
            if len(sub) != 2 or not os.path.isdir(folder):
                continue
            for name in os.listdir(folder):
                if now - os.path.getmtime(os.path.join(folder, name)) >= min_age_s:
                    yield name
