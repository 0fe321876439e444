"""Progress frames: a connection's hello asks for them, a running executeBatch sends them.

A progress frame (Code 2) is not a reply: it tells the client that the request with its Id is still
running and how many of its messages are done, so a slow batch is not mistaken for a hung server.
"""
from typing import Any, Callable, Dict, Optional

from .protocol import RequestError, progress_frame

PROGRESS_OPTION = "Progress"
# Intervals are kept in seconds as floats; a larger millisecond count means "practically never", and
# capping it keeps an absurd integer from overflowing the float conversion.
_MAX_INTERVAL_MS = 10 ** 12


def progress_option(options: Dict[str, Any]) -> Optional[int]:
    """hello's Progress option: None when absent, else the interval in ms (an integer >= 1)."""
    if PROGRESS_OPTION not in options:
        return None
    value = options[PROGRESS_OPTION]
    if type(value) is not int or value < 1:
        raise RequestError("BadOption", "Progress must be an integer number of milliseconds, at least 1")
    return value


class Progress:
    """One connection's progress frames: the interval its hello negotiated, and how a frame leaves."""

    __slots__ = ("interval", "_send")

    def __init__(self, send: Callable[[bytes], None]) -> None:
        # Seconds between frames; None (no progress frames at all) until a hello asks for them.
        self.interval: Optional[float] = None
        self._send = send

    def negotiate(self, ms: Optional[int]) -> None:
        """Every successful hello sets it: with Progress it turns frames on, without it off."""
        self.interval = None if ms is None else min(ms, _MAX_INTERVAL_MS) / 1000.0

    def send(self, req_id: Optional[int], done: int) -> None:
        """Send one progress frame for the running request (non-blocking, like a reply)."""
        self._send(progress_frame(req_id, done))
