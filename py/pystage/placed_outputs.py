"""Outputs of one request made final before their message's state writes committed.

A message that wrote to the state commits only once nothing can fail for it any more, so its output is
encoded, and given its room in the reply or written to its spool file, right after it returns (see
ModelExecutor._commit_with). The reply is then built around these: a placed output keeps its place.
"""
from typing import Dict


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
