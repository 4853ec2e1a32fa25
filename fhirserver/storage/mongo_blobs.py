"""Binary contents in MongoDB: small ones inline in the `blobs` collection, larger ones (CT and MRI
reports, scans) streamed to and from GridFS in 255 KiB chunks, never held whole in memory.

A key says where its content is: "i<hex>" inline, "g<hex>" GridFS. Keys are random, so a refused
write deletes its own upload and nothing else.
"""
from __future__ import annotations

import datetime
import io
import secrets
import time
from typing import BinaryIO, Iterator

import gridfs
from bson import Binary

from ..errors import NotFound
from .base import BlobInfo, BlobStore, Metered
from .mongo_layout import BLOBS
from .mongo_units import unavailable

INLINE_MAX = 256 * 1024


class MongoBlobStore(BlobStore):
    def __init__(self, db, inline_max: int = INLINE_MAX):
        self.inline = db[BLOBS]
        self.bucket = gridfs.GridFSBucket(db, bucket_name="binary")
        self.files, self.chunks = db["binary.files"], db["binary.chunks"]    # GridFS's own collections
        self.inline_max = inline_max

    def put(self, chunks: Iterator[bytes], max_bytes: int) -> BlobInfo:
        with unavailable():
            return self._put(chunks, max_bytes)

    def _put(self, chunks: Iterator[bytes], max_bytes: int) -> BlobInfo:
        metered, head = Metered(chunks, max_bytes), bytearray()
        for chunk in metered:                      # small contents stay inline
            head += chunk
            if len(head) > self.inline_max:
                break
        else:
            key = "i" + secrets.token_hex(32)
            self.inline.insert_one({"_id": key, "data": Binary(bytes(head)), "created": _now()})
            return metered.info(key)
        key = "g" + secrets.token_hex(32)
        stream = self.bucket.open_upload_stream_with_id(key, key)
        try:
            stream.write(bytes(head))
            for chunk in metered:                  # the same iterator: it goes on after the head
                stream.write(chunk)
            stream.close()
        except BaseException:
            stream.abort()
            raise
        return metered.info(key)

    def open(self, key: str) -> BinaryIO:
        """(A server lost later, while the stream is read, ends the response early: its status is sent.)"""
        with unavailable():
            if key.startswith("i"):
                doc = self.inline.find_one({"_id": key})
                if doc is None:
                    raise NotFound(f"Binary content {key} is missing from the blob store")
                return io.BytesIO(bytes(doc["data"]))
            try:
                return self.bucket.open_download_stream(key)      # seekable, read in chunks
            except gridfs.errors.NoFile:
                raise NotFound(f"Binary content {key} is missing from the blob store") from None

    def size(self, key: str) -> int:
        with unavailable():
            if key.startswith("i"):
                doc = self.inline.find_one({"_id": key}, {"data": 1})
                return len(doc["data"]) if doc else 0
            doc = self.files.find_one({"_id": key}, {"length": 1})
            return doc["length"] if doc else 0

    def delete(self, key: str) -> None:
        with unavailable():
            if key.startswith("i"):
                self.inline.delete_one({"_id": key})
                return
            self.files.delete_one({"_id": key})              # what GridFSBucket.delete does, file then chunks
            self.chunks.delete_many({"files_id": key})

    def keys(self, min_age_s: float = 0) -> Iterator[str]:
        cutoff = datetime.datetime.fromtimestamp(time.time() - min_age_s, datetime.timezone.utc)
        with unavailable():
            for doc in self.inline.find({"created": {"$lte": cutoff}}, {"_id": 1}):
                yield doc["_id"]
            for doc in self.files.find({"uploadDate": {"$lte": cutoff}}, {"_id": 1}):
                yield doc["_id"]


def _now():
    return datetime.datetime.now(datetime.timezone.utc)
