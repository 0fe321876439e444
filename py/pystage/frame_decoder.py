"""Streaming decoder of protocol v1 frames, with the resync rules of the shared decoder contract.

Fed arbitrary chunks (one byte up to many frames), it keeps only the bytes not yet consumed and
returns the events found so far, in stream order. It never parses JSON: that is the layer above.
"""
from typing import List, NamedTuple, Optional, Union

from .frame_format import (
    BEGIN, DEFAULT_MAX_FRAME_BYTES, END, HEADER, HEADER_SIZE, TRAILER_SIZE, VERSION_CRC32, VERSION_MD5,
    checksum_field,
)

FRAME = "frame"
ERROR = "error"
SKIPPED = "skipped"

BAD_VERSION = "bad-version"
TOO_LONG = "too-long"
MISSING_END = "missing-end"
BAD_CHECKSUM = "bad-checksum"

_unpack_header = HEADER.unpack_from
# Prefixes of BEGIN, longest first: a chunk may end in the middle of a marker.
_BEGIN_PREFIXES = tuple(BEGIN[:k] for k in range(len(BEGIN) - 1, 0, -1))


class FrameEvent(NamedTuple):
    """One decoder event. `payload` is set for frames and bad-checksum errors; `skipped` for skipped events."""

    event: str
    kind: Optional[str] = None
    payload: Optional[bytes] = None
    skipped: int = 0


# Builds a FrameEvent without the Python-level __new__ of NamedTuple: once per frame, it shows.
_new_tuple = tuple.__new__


class FrameDecoder:
    """A state machine over a byte stream; `feed` returns the events completed by each chunk."""

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        # Only unconsumed bytes live here; a consumed prefix is cut off once per feed.
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """How many bytes wait for the rest of their frame."""
        return len(self._buffer)

    def feed(self, chunk: Union[bytes, bytearray, memoryview]) -> List[FrameEvent]:
        buffer = self._buffer
        if not buffer:
            buf: Union[bytes, bytearray] = chunk if isinstance(chunk, bytes) else bytes(chunk)
        elif len(buffer) < len(chunk):
            # A short tail plus a big chunk: one copy into immutable bytes, whose frames then slice
            # out in a single copy each. Copying the tail costs less than the chunk, so this stays linear.
            buf = b"".join((buffer, chunk))
            buffer.clear()
        else:
            # A long partial frame (or tiny chunks): grow it in place instead of copying it again.
            buffer += chunk
            buf = buffer
        events: List[FrameEvent] = []
        consumed = self._parse(buf, events)
        if buf is buffer:
            if consumed:
                del buffer[:consumed]
        elif consumed < len(buf):
            with memoryview(buf) as view:
                buffer += view[consumed:]
        return events

    def _parse(self, buf: Union[bytes, bytearray], events: List[FrameEvent]) -> int:
        """Append the events found in buf to `events`; return how many leading bytes were consumed."""
        size = len(buf)
        in_place = isinstance(buf, bytes)
        pos = 0
        max_len = self.max_frame_bytes
        skipped = 0
        while pos < size:
            if not buf.startswith(BEGIN, pos):
                found = buf.find(BEGIN, pos)
                if found < 0:
                    keep = 0
                    for prefix in _BEGIN_PREFIXES:
                        if size - pos >= len(prefix) and buf.endswith(prefix):
                            keep = len(prefix)
                            break
                    skipped += size - keep - pos
                    pos = size - keep
                    break
                skipped += found - pos
                pos = found
            if size - pos < HEADER_SIZE:
                break
            _, version, digest, length = _unpack_header(buf, pos)
            if version != VERSION_MD5 and version != VERSION_CRC32:
                skipped = self._flush_skipped(events, skipped)
                events.append(FrameEvent(ERROR, BAD_VERSION))
                pos += len(BEGIN)
                continue
            if length > max_len:
                skipped = self._flush_skipped(events, skipped)
                events.append(FrameEvent(ERROR, TOO_LONG))
                pos += len(BEGIN)
                continue
            start = pos + HEADER_SIZE
            end = start + length
            if size < end + TRAILER_SIZE:
                break
            skipped = self._flush_skipped(events, skipped)
            if not buf.startswith(END, end):
                events.append(FrameEvent(ERROR, MISSING_END))
                pos += len(BEGIN)
                continue
            if in_place:
                payload = buf[start:end]
            else:
                # One copy: slicing the bytearray and converting the slice would make two.
                with memoryview(buf) as view:
                    payload = view[start:end].tobytes()
            if checksum_field(version, payload) == digest:
                events.append(_new_tuple(FrameEvent, (FRAME, None, payload, 0)))
            else:
                events.append(FrameEvent(ERROR, BAD_CHECKSUM, payload))
            pos = end + TRAILER_SIZE
        self._flush_skipped(events, skipped)
        return pos

    @staticmethod
    def _flush_skipped(events: List[FrameEvent], skipped: int) -> int:
        if skipped:
            events.append(FrameEvent(SKIPPED, skipped=skipped))
        return 0
