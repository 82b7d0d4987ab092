"""Framing of an episode file: a sequence of self-checking records, appended as an episode is recorded.

Each record is::

    magic       4 bytes   b"FDR1"
    header_len  uint32    little-endian, bytes of the JSON header
    payload_len uint32    little-endian, bytes of the payload
    crc32       uint32    zlib.crc32 of header and payload together
    header      JSON      UTF-8, an object with at least "kind"
    payload     bytes     one raw deflate stream per array, laid out as header["fields"] describes

Arrays are stored as raw little-endian bytes of the dtypes named in the header, so
reading executes no code (no pickle). Each array is compressed on its own, so a
reader that needs only the actions never decompresses frames. A record that a crash cut short is detected by
its length; a record whose bytes changed, by its checksum.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from demos.errors import CorruptEpisodeError

MAGIC = b"FDR1"
_PREFIX = struct.Struct("<4sIII")
PREFIX_BYTES = _PREFIX.size

KIND_BEGIN = "begin"
KIND_STEPS = "steps"
KIND_END = "end"

# zlib level 1: rendered frames shrink several-fold, and compression stays far
# below a millisecond per chunk, which keeps headless recording above 1,000 steps/s.
COMPRESSION_LEVEL = 1
# Raw deflate (no zlib header and Adler-32 trailer): the record's CRC32 already checks
# the bytes, and skipping Adler-32 makes decompression about a third faster.
DEFLATE_WBITS = -15
CODEC = "deflate"


@dataclass(frozen=True)
class FieldLayout:
    """Location of one array's compressed bytes in a record's payload."""

    name: str
    dtype: str | list
    """``numpy.dtype.str``, or for a structured array its ``descr`` list."""
    shape: tuple[int, ...]
    offset: int
    compressed_bytes: int


@dataclass(frozen=True)
class Record:
    """One parsed record: its header, the slice of the file holding its payload, and the file offsets."""

    header: dict[str, Any]
    payload: memoryview
    start: int
    end: int

    @property
    def kind(self) -> str:
        return self.header["kind"]

    def fields(self) -> list[FieldLayout]:
        return [
            FieldLayout(name, dtype, tuple(shape), offset, nbytes)
            for name, dtype, shape, offset, nbytes in self.header.get("fields", [])
        ]


def encode_record(kind: str, header: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None) -> bytes:
    """Encode one record; each of ``arrays`` is compressed on its own and stored in order."""
    full_header = {"kind": kind, **header}
    payload = b""
    if arrays:
        layout = []
        parts = []
        offset = 0
        for name, array in arrays.items():
            array = np.ascontiguousarray(array)
            if array.dtype.byteorder == ">":
                array = array.astype(array.dtype.newbyteorder("<"))
            compressed = zlib.compress(
                array.data.cast("B") if array.nbytes else b"", COMPRESSION_LEVEL, wbits=DEFLATE_WBITS
            )
            dtype_spec = array.dtype.descr if array.dtype.names else array.dtype.str
            layout.append([name, dtype_spec, list(array.shape), offset, len(compressed)])
            parts.append(compressed)
            offset += len(compressed)
        full_header["codec"] = CODEC
        full_header["fields"] = layout
        payload = b"".join(parts)
    header_bytes = json.dumps(full_header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    crc = zlib.crc32(payload, zlib.crc32(header_bytes))
    return _PREFIX.pack(MAGIC, len(header_bytes), len(payload), crc) + header_bytes + payload


def decode_arrays(record: Record, names: Collection[str] | None = None) -> dict[str, np.ndarray]:
    """Decompress a record's arrays (only ``names`` when given) into read-only arrays.

    Raises ``ValueError`` or ``zlib.error`` when the bytes do not match the layout.
    """
    if record.header.get("codec") != CODEC:
        raise ValueError(f"unknown codec {record.header.get('codec')!r}, expected {CODEC!r}")
    arrays = {}
    for layout in record.fields():
        if names is not None and layout.name not in names:
            continue
        compressed = record.payload[layout.offset : layout.offset + layout.compressed_bytes]
        raw = zlib.decompress(compressed, DEFLATE_WBITS)
        arrays[layout.name] = np.frombuffer(raw, dtype=dtype_from_spec(layout.dtype)).reshape(layout.shape)
    return arrays


def dtype_from_spec(spec: str | list) -> np.dtype:
    """Rebuild a dtype from ``dtype.str`` or from a structured dtype's ``descr`` read back from JSON."""
    if isinstance(spec, str):
        return np.dtype(spec)
    fields = []
    for entry in spec:
        if not isinstance(entry, list) or len(entry) not in (2, 3) or not isinstance(entry[1], str):
            raise ValueError(f"invalid structured dtype entry {entry!r}")
        fields.append((entry[0], entry[1]) if len(entry) == 2 else (entry[0], entry[1], tuple(entry[2])))
    return np.dtype(fields)


@dataclass
class ParsedFile:
    """The records of one episode file, and whether its end was cut short."""

    records: list[Record]
    valid_bytes: int
    """Bytes from the start of the file up to the end of the last complete record."""
    torn_tail: bool
    """True when bytes after the last complete record form an incomplete record (a write cut short)."""


def parse_records(data: bytes | memoryview, path: str) -> ParsedFile:
    """Split an episode file's bytes into records, checking each record's length and checksum.

    An incomplete last record is reported through ``torn_tail``, because a crash
    cuts the file there. A checksum mismatch, or bytes that are not a record,
    raise ``CorruptEpisodeError`` naming ``path``.
    """
    view = memoryview(data)
    records: list[Record] = []
    position = 0
    size = len(view)
    while position < size:
        if size - position < PREFIX_BYTES:
            return ParsedFile(records, position, torn_tail=True)
        magic, header_len, payload_len, crc = _PREFIX.unpack_from(view, position)
        if magic != MAGIC:
            raise CorruptEpisodeError(
                path,
                f"episode file {path} is corrupt: expected a record marker {MAGIC!r} at byte {position}, "
                f"found {bytes(magic)!r}. Pass --skip-bad to the script (skip_bad=True to load_demos) to leave this "
                f"episode out, or delete the file.",
            )
        header_start = position + PREFIX_BYTES
        payload_start = header_start + header_len
        end = payload_start + payload_len
        if end > size:
            return ParsedFile(records, position, torn_tail=True)
        header_bytes = view[header_start:payload_start]
        payload = view[payload_start:end]
        if zlib.crc32(payload, zlib.crc32(header_bytes)) != crc:
            raise CorruptEpisodeError(
                path,
                f"episode file {path} is corrupt: the record at byte {position} fails its CRC32 checksum. "
                f"Pass --skip-bad to the script (skip_bad=True to load_demos) to leave this episode out, or delete the file.",
            )
        try:
            header = json.loads(bytes(header_bytes))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CorruptEpisodeError(
                path, f"episode file {path} is corrupt: the record header at byte {position} is not JSON ({error}). "
                    f"Pass --skip-bad to the script (skip_bad=True to load_demos) to leave this episode out, or delete the file."
            ) from error
        records.append(Record(header, payload, position, end))
        position = end
    return ParsedFile(records, position, torn_tail=False)


def iter_headers(path: str) -> Iterator[tuple[dict[str, Any], int, int]]:
    """Yield ``(header, start, end)`` of each complete record without reading payloads.

    Stops silently at an incomplete last record; checksums are not verified here.
    """
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        position = 0
        while True:
            prefix = file.read(PREFIX_BYTES)
            if len(prefix) < PREFIX_BYTES:
                return
            magic, header_len, payload_len, _ = _PREFIX.unpack(prefix)
            if magic != MAGIC:
                raise CorruptEpisodeError(
                    path,
                    f"episode file {path} is corrupt: expected a record marker {MAGIC!r} at byte {position}. "
                    f"Pass --skip-bad to the script (skip_bad=True to load_demos) to leave this episode out, or delete the file.",
                )
            end = position + PREFIX_BYTES + header_len + payload_len
            if end > size:
                return
            header_bytes = file.read(header_len)
            file.seek(payload_len, 1)
            try:
                header = json.loads(header_bytes)
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                raise CorruptEpisodeError(
                    path, f"episode file {path} is corrupt: the record header at byte {position} is not JSON ({error}). "
                    f"Pass --skip-bad to the script (skip_bad=True to load_demos) to leave this episode out, or delete the file."
                ) from error
            yield header, position, end
            position = end

