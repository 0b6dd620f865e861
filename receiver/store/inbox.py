"""The inbox's row format: webhook bodies with their receive times, packed for one write.

Intake makes a batch of requests durable with one inbox row (see receiver/store/sqlite.py);
these pure functions turn the batch into that row and back.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

Body = tuple[bytes, float, int]  # body, received_at (unix seconds), alert_count
INBOX_ROW_BYTES = 4 * 1024 * 1024


def split_by_size(rows: list[Body], limit: int) -> list[list[Body]]:
    """Consecutive runs of bodies of at most `limit` bytes (a larger body goes alone), so
    expanding one inbox row never holds more than that in memory at once."""
    chunks: list[list[Body]] = [[]]
    size = 0
    for row in rows:
        if chunks[-1] and size + len(row[0]) > limit:
            chunks.append([])
            size = 0
        chunks[-1].append(row)
        size += len(row[0])
    return [chunk for chunk in chunks if chunk]


_BODY_HEADER = struct.Struct("<dII")  # received_at, alert_count, body length


def pack(rows: Sequence[Body]) -> bytes:
    """Bodies with their receive times, compressed together.

    zlib level 1 shrinks a batch of 20-alert groups ~14x for ~10 µs per body, on the store
    thread that calls this (zlib lets go of the GIL): the fsync that makes a batch durable
    is what intake waits for, and it costs by the byte.
    """
    parts = []
    for body, received_at, alert_count in rows:
        parts.append(_BODY_HEADER.pack(received_at, alert_count, len(body)))
        parts.append(body)
    return zlib.compress(b"".join(parts), 1)


def unpack(packed: bytes) -> list[Body]:
    data = zlib.decompress(packed)
    rows = []
    offset = 0
    while offset < len(data):
        received_at, alert_count, length = _BODY_HEADER.unpack_from(data, offset)
        offset += _BODY_HEADER.size
        rows.append((data[offset : offset + length], received_at, alert_count))
        offset += length
    return rows
