"""Outputs of one request made final before their message's state writes committed.

A message that wrote to the state commits only once nothing can fail for it any more, so its output is
encoded, and given its room in the reply or written to its spool file, right after it returns (see
ModelExecutor._commit_with). The reply is then built around these: a placed output keeps its place.
"""
from operator import itemgetter
from typing import Any, Callable, Dict, List, Optional, Tuple

from .model_failure import unencodable_output
from .protocol import MODEL_ERROR, RequestError
from .spool import Spool

# A failed batch item: its index and its error (whose code is the item's Code).
ItemError = Tuple[int, RequestError]
_index_of = itemgetter(0)


class PlacedOutputs:
    """Per request: the placed inline outputs (index -> JSON bytes), spilled ones (index -> path), and the
    reply room they take, at most `room` bytes (the reply budget less every item's share)."""

    __slots__ = ("inline", "files", "reserved", "room")

    def __init__(self, room: int) -> None:
        self.inline: Dict[int, bytes] = {}
        self.files: Dict[int, str] = {}
        self.reserved = 0
        self.room = room

    def take(self, index: int, data: bytes) -> bool:
        """Keep `data` inline for message `index` if the room allows; False when it must be spilled."""
        if self.reserved + len(data) > self.room:
            return False
        self.inline[index] = data
        self.reserved += len(data)
        return True

    def __bool__(self) -> bool:
        return bool(self.inline) or bool(self.files)


class OutputPlacer:
    """Encodes an output and places it: inline (taking room in `PlacedOutputs`) or in a spool file."""

    __slots__ = ("_encode", "_spool", "_inline_limit", "_too_large")

    def __init__(self, encode: Callable[[Any], bytes], spool: Spool, inline_limit: int,
                 too_large: Callable[[int], Optional[RequestError]]) -> None:
        self._encode = encode
        self._spool = spool
        self._inline_limit = inline_limit
        # The error of an encoded output of that many bytes when it is over max_output_bytes, else None.
        self._too_large = too_large

    def place(self, result: Dict[str, Any], index: int, errors: List[ItemError], placed: PlacedOutputs) -> bool:
        """Encode a result and take its room in the reply, or spill it; False (an error joins `errors`) when
        it cannot be encoded or written."""
        try:
            data = self._encode(result)
        except Exception as exc:
            errors.append((index, unencodable_output(exc)))
            return False
        too_large = self._too_large(len(data))
        if too_large is not None:
            errors.append((index, too_large))
            return False
        if len(data) <= self._inline_limit and placed.take(index, data):
            return True
        try:
            placed.files[index] = self.spill(data)
        except RequestError as exc:
            errors.append((index, exc))
            return False
        return True

    def place_all(self, outcome: Tuple[List[Optional[Dict[str, Any]]], List[ItemError]], placed: PlacedOutputs) -> bool:
        """Place every output of a vectorised call (one that cannot be placed fails its message); True when
        some message still succeeded."""
        results, errors = outcome
        count = len(errors)
        for index, result in enumerate(results):
            if result is not None and not self.place(result, index, errors, placed):
                results[index] = None
        if len(errors) > count:
            errors.sort(key=_index_of)
        return len(errors) < len(results)

    def spill(self, data: bytes) -> str:
        """Write an output to a spool file; a failure (a full disk) is the message's SpoolWriteError."""
        try:
            return self._spool.write_output(data)
        except OSError as exc:
            raise RequestError("SpoolWriteError", f"cannot write a {len(data)}-byte output to the spool directory "
                               f"{self._spool.path}: {exc}; free space there, or point TMPDIR elsewhere",
                               MODEL_ERROR) from exc
