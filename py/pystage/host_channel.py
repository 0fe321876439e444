"""Requests from a running model to the host: `self.context.request(...)` and `self.context.cache`.

While a request runs, the server sends a hostRequest frame (Code 3, the running request's Id, a Seq of
its own) and waits on the same connection for the client's hostReply with that Seq; every other frame
that arrives meanwhile is kept, in order, for after the running request. Only a connection whose hello
asked for it (`Host`) ever sees such a frame; without it a model's request fails at once.
"""
import time
from typing import Any, Callable, Dict, List, Optional

from .protocol import encode_json, host_request_frame

# hello's default for requests without their own timeout, when the client names none.
DEFAULT_TIMEOUT_MS = 30_000
_MISSING = object()

# Sends a hostRequest frame's payload and waits for the hostReply with its Seq: the reply, parsed, or
# raises HostRequestError (timeout, connection gone). Set by the server for the running request.
Exchange = Callable[[bytes, int, float], Dict[str, Any]]


class HostRequestError(Exception):
    """A host request failed: the handler threw (its message), no handler has the name, or the timeout passed."""

    def __init__(self, message: str, error_type: str = "HostRequestError") -> None:
        super().__init__(message)
        self.type = error_type


class HostChannel:
    """The server's one channel to the host (one message runs at a time, so one request is open at a time)."""

    __slots__ = ("enabled", "default_timeout_ms", "exchange", "req_id", "max_payload", "_seq", "_index_of")

    def __init__(self, index_of: Callable[[], int]) -> None:
        self.enabled = False
        self.default_timeout_ms = DEFAULT_TIMEOUT_MS
        self.exchange: Optional[Exchange] = None
        self.req_id: Optional[int] = None
        # A request frame may take at most this many bytes (half the client's frame limit, like a reply's results).
        self.max_payload = 32 * 1024 * 1024
        self._seq = 0
        self._index_of = index_of

    def call(self, kind: str, name: str, payload: Any, timeout: Optional[float], ttl_ms: Optional[int] = None) -> Any:
        """Ask the host; the answer's Result. Raises HostRequestError."""
        if not self.enabled or self.exchange is None or self.req_id is None:
            raise HostRequestError("host requests are not available: the client did not enable them in hello, "
                                   "or no message is running", "HostRequestsDisabled")
        timeout_ms = self.default_timeout_ms if timeout is None else _positive_ms("timeout", timeout)
        try:
            payload_text = encode_json(payload)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"a host request's payload must be JSON: {exc}") from exc
        self._seq += 1
        seq = self._seq
        frame = host_request_frame(self.req_id, seq, kind, name, self._index_of(), timeout_ms, ttl_ms,
                                   payload_text.encode("utf-8"))
        if len(frame) > self.max_payload:
            raise HostRequestError(f"{kind} {name!r}: the request takes {len(frame)} bytes, more than the "
                                   f"{self.max_payload} a host request may take", "HostRequestTooLarge")
        try:
            answer = self.exchange(frame, seq, time.monotonic() + timeout_ms / 1000.0)
        except HostRequestError as exc:
            if exc.type == "HostRequestTimeout":
                raise HostRequestError(f"{kind} {name!r}: no answer from the host within {timeout_ms} ms",
                                       exc.type) from None
            raise
        if answer.get("Code", -1) < 0:
            error = answer.get("Error") or {}
            raise HostRequestError(str(error.get("Message", "the host refused the request")),
                                   str(error.get("Type", "HostRequestError")))
        return answer.get("Result")


def _check_name(what: str, name: Any) -> str:
    if type(name) is not str or not name:
        raise TypeError(f"{what} must be a non-empty string, not {name!r}")
    return name


class SharedCache:
    """`self.context.cache`: the cache every partition and the host share; each call asks the host."""

    __slots__ = ("_channel",)

    def __init__(self, channel: HostChannel) -> None:
        self._channel = channel

    def get(self, key: str, default: Any = None) -> Any:
        """The value at key (a copy), or default when absent or expired."""
        found: List[Any] = self._channel.call("cache.get", _check_name("a cache key", key), None, None)
        return found[0] if found else default

    def set(self, key: str, value: Any, ttl: Optional[float] = None) -> None:
        """Store value (JSON) at key, for `ttl` seconds when given; visible to every partition once this returns."""
        ttl_ms = None if ttl is None else _positive_ms("ttl", ttl)
        self._channel.call("cache.set", _check_name("a cache key", key), value, None, ttl_ms)

    def delete(self, key: str) -> bool:
        """Remove key; True if it was there."""
        return bool(self._channel.call("cache.delete", _check_name("a cache key", key), None, None))


def make_request(channel: HostChannel) -> Callable[..., Any]:
    """`self.context.request(name, payload=None, timeout=None)`: a handler's answer, any JSON value."""

    def request(name: str, payload: Any = None, timeout: Optional[float] = None) -> Any:
        return channel.call("call", _check_name("a handler name", name), payload, timeout)

    return request


def _positive_ms(what: str, seconds: Any) -> int:
    """A positive number of seconds as whole milliseconds (at least 1); ValueError for anything else."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise ValueError(f"{what} must be a positive number of seconds, or None")
    return max(1, int(seconds * 1000))
