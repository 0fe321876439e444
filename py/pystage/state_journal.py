"""The partition's state as the server holds it, changed one message at a time (see partition_state.py).

Every model's keys map to the JSON text the server's encoder wrote, and, for a key set with a TTL, to
when it expires (ms since the epoch, on the host's clock). A message's writes go straight into the
running model's dict and an undo log; they commit when everything that can still fail for the message
has succeeded (its output encoded and placed), and roll back otherwise. A request's committed changes
are gathered for its reply; a request whose reply cannot be built takes all of them back (`abort`).

Time: a request carries the host's `Now` (the time its batch was made). Expiry is judged against that,
never against the clock at execution, so a request re-executed after a crash sees what its first run saw.
"""
import heapq
import time
from typing import Any, Dict, List, Optional, Tuple

from .protocol import encode_json

# Used when hello does not name a limit: the client's own default (src/api/options.ts, maxStateBytes).
DEFAULT_MAX_STATE_BYTES = 16 * 1024 * 1024
MISSING = object()
# Counted per entry besides its key's JSON (escapes included: what crosses the wire) and its value's
# JSON: `["",],` and more. An entry with an expiry counts EXPIRY_OVERHEAD more (`,` and 13-15 digits).
ENTRY_OVERHEAD = 8
EXPIRY_OVERHEAD = 16


class StateFullError(Exception):
    """A state write would take the partition's state past its limit; the message fails, the state is unchanged."""


def json_key(key: str) -> str:
    """A key as a JSON string; printable ASCII without quotes or backslashes needs no encoder."""
    if key.isascii() and key.isprintable() and '"' not in key and "\\" not in key:
        return f'"{key}"'
    return encode_json(key)


def key_bytes(key: str) -> int:
    """The UTF-8 bytes of a key as a JSON string, without the quotes; printable ASCII (the common case)
    costs its length, no encoding needed to count it."""
    if key.isascii() and key.isprintable() and '"' not in key and "\\" not in key:
        return len(key)
    return len(encode_json(key).encode("utf-8")) - 2


def entry_size(key: str, text: Optional[str], expires_at: Optional[int] = None, key_size: int = -1) -> int:
    """What one entry counts toward the limit: its key's JSON bytes (key_size, when known), its value's
    JSON bytes, ENTRY_OVERHEAD, and EXPIRY_OVERHEAD with an expiry."""
    if text is None:
        return 0
    return ((key_bytes(key) if key_size < 0 else key_size) + (len(text) if text.isascii() else len(text.encode("utf-8")))
            + ENTRY_OVERHEAD + (0 if expires_at is None else EXPIRY_OVERHEAD))


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class StateJournal:
    """Every model's state on this server, and an undo log of the writes of the message running now."""

    __slots__ = ("store", "expiries", "heaps", "ttl_ms", "uncommitted", "changes", "before", "model", "results",
                 "max_bytes", "bytes_used", "_delta", "report", "_values", "_expiries", "now")

    def __init__(self) -> None:
        self.store: Dict[str, Dict[str, str]] = {}
        # Per model, the keys that expire and when; and a heap of (expiresAt, key) to find the due ones.
        self.expiries: Dict[str, Dict[str, int]] = {}
        self.heaps: Dict[str, List[Tuple[int, str]]] = {}
        # Per model, the TTL of a write that names none (addModel's StateTtlMs).
        self.ttl_ms: Dict[str, int] = {}
        # The running message's undo log: (key, text before, expiry before, the request's change before).
        # Mutated in place only: the executor keeps a reference and tests it for truth after every message.
        self.uncommitted: List[Tuple[str, Optional[str], Optional[int], Any]] = []
        # The running request's committed changes, for its reply: key -> JSON text, None for a delete.
        self.changes: Dict[str, Optional[str]] = {}
        # Each changed key's (text, expiry) before the running request: for `abort`, and so that a key
        # the request made and deleted again is not reported at all.
        self.before: Dict[str, Tuple[Optional[str], Optional[int]]] = {}
        # The model whose request is running (None: no message is running, writes are refused).
        self.model: Optional[str] = None
        # The running request's results list: its length is the index of the message running now.
        self.results: List[Any] = []
        self.max_bytes = DEFAULT_MAX_STATE_BYTES
        self.bytes_used = 0
        self._delta = 0
        # Set by hello: the client takes the changes with each reply (and restores the state).
        self.report = False
        # The running model's own dicts in `store` and `expiries`.
        self._values: Dict[str, str] = {}
        self._expiries: Dict[str, int] = {}
        # The running request's time (ms since the epoch): its Now, or the wall clock when it sent none.
        self.now = 0

    # --- a request's life --------------------------------------------------------------------------

    def start(self, model: str, now: Optional[int]) -> None:
        """A request of `model` starts at `now`: the model's keys due by then are removed first (changes
        of the request, whatever its messages do)."""
        self.now = wall_clock_ms() if now is None else now
        heap = self.heaps.get(model)
        if heap and heap[0][0] <= self.now:
            self._expire(model, heap)

    def begin(self, model: str, results: List[Any]) -> None:
        self.model = model
        self.results = results
        self._values = self.store.setdefault(model, {})
        self._expiries = self.expiries.setdefault(model, {})

    def commit(self) -> None:
        """The running message succeeded: its writes stay."""
        self.bytes_used += self._delta
        self._delta = 0
        self.uncommitted.clear()

    def rollback(self) -> None:
        """The running message failed: the state goes back to what it found."""
        values, expiries, changes = self._values, self._expiries, self.changes
        for key, before, expiry, change in reversed(self.uncommitted):
            _put(values, expiries, key, before, expiry)
            if change is MISSING:
                changes.pop(key, None)
            else:
                changes[key] = change
        self.uncommitted.clear()
        self._delta = 0

    def reply_state(self) -> Optional[bytes]:
        """The request's changes as its reply's `State` value (None when nothing changed or not reported);
        a message still uncommitted is rolled back first. Entries: [key, value], [key, value, expiresAt], [key]."""
        if self.uncommitted:
            self.rollback()
        if not self.changes or not self.report:
            return None
        before, expiries = self.before, self._expiries
        parts = []
        for key, text in self.changes.items():
            if text is not None:
                expiry = expiries.get(key)
                parts.append(f"[{json_key(key)},{text}]" if expiry is None else f"[{json_key(key)},{text},{expiry}]")
            elif before[key][0] is not None:
                parts.append(f"[{json_key(key)}]")
        return ("[%s]" % ",".join(parts)).encode("utf-8") if parts else None

    def abort(self) -> None:
        """The request cannot be answered with its changes: every one of them is taken back."""
        if self.uncommitted:
            self.rollback()
        values, expiries = self._values, self._expiries
        for key, (text, expiry) in self.before.items():
            self.bytes_used += entry_size(key, text, expiry) - entry_size(key, values.get(key), expiries.get(key))
            _put(values, expiries, key, text, expiry)
            if expiry is not None:
                heapq.heappush(self.heaps.setdefault(self.model or "", []), (expiry, key))
        self.changes.clear()

    def finish(self) -> None:
        """End the request."""
        if self.uncommitted:
            self.rollback()
        if not self._values and self.model is not None:
            self.store.pop(self.model, None)  # begin's empty dict: keep no trace of a model without state
            self.expiries.pop(self.model, None)
        self.model = None
        self.results = []
        self._values = {}
        self._expiries = {}
        self.changes = {}
        self.before = {}

    def _expire(self, model: str, heap: List[Tuple[int, str]]) -> None:
        self.begin(model, self.results)
        values, expiries, now = self._values, self._expiries, self.now
        while heap and heap[0][0] <= now:
            expiry, key = heapq.heappop(heap)
            if expiries.get(key) != expiry:
                continue  # written again since, or deleted: the heap entry is stale
            text = values[key]
            self.before.setdefault(key, (text, expiry))
            self.bytes_used -= entry_size(key, text, expiry)
            del values[key]
            del expiries[key]
            self.changes[key] = None

    # --- what the client says ----------------------------------------------------------------------

    def restore(self, states: Any, append: bool = False) -> int:
        """Replace every model's state with the client's (`{model: [[key, value, expiresAt?], ...]}`), or
        with `append` add to it (a state restored in several frames); the number of keys now held."""
        if type(states) is not dict:
            raise TypeError("States must be a JSON object of model name to [[key, value], ...]")
        if not append:
            self.store, self.expiries, self.heaps, self.bytes_used = {}, {}, {}, 0
        for model, entries in states.items():
            if type(entries) is not list:
                raise TypeError(f"the state of model {model!r} must be a list of [key, value] pairs")
            values = self.store.setdefault(model, {})
            expiries = self.expiries.setdefault(model, {})
            heap = self.heaps.setdefault(model, [])
            for entry in entries:
                if type(entry) is not list or not 2 <= len(entry) <= 3 or type(entry[0]) is not str \
                        or (len(entry) == 3 and entry[2] is not None and type(entry[2]) is not int):
                    raise TypeError(f"a state entry of model {model!r} is not a [key, value] pair "
                                    "or a [key, value, expiresAt] triple")
                key, text = entry[0], encode_json(entry[1])
                expiry = entry[2] if len(entry) == 3 else None
                self.bytes_used += entry_size(key, text, expiry) - entry_size(key, values.get(key), expiries.get(key))
                _put(values, expiries, key, text, expiry)
                if expiry is not None:
                    heap.append((expiry, key))
            heapq.heapify(heap)
        self.uncommitted.clear()
        self.changes.clear()
        self.before.clear()
        self._delta = 0
        return sum(len(values) for values in self.store.values())

    def drop(self, model: str) -> None:
        """A removed model's state goes with it."""
        values = self.store.pop(model, None)
        expiries = self.expiries.pop(model, {})
        self.heaps.pop(model, None)
        if values:
            self.bytes_used -= sum(entry_size(k, t, expiries.get(k)) for k, t in values.items())

    # --- a model's view --------------------------------------------------------------------------

    def lookup(self, model: str, key: str) -> Optional[str]:
        if model == self.model:
            return self._values.get(key)
        values = self.store.get(model)
        if values is None:
            return None
        expiry = self.expiries.get(model, {}).get(key)
        return None if expiry is not None and expiry <= self.now else values.get(key)

    def write(self, model: str, key: str, text: Optional[str], ttl_ms: Optional[int] = None) -> None:
        if model != self.model:
            raise RuntimeError("the state can only change while a message runs (inside execute)")
        values, expiries = self._values, self._expiries
        before = values.get(key)
        expiry_before = expiries.get(key) if expiries else None
        if ttl_ms is None:
            ttl_ms = self.ttl_ms.get(model)
        expiry = None if text is None or ttl_ms is None else self.now + ttl_ms
        size = key_bytes(key)
        grow = entry_size(key, text, expiry, size) - entry_size(key, before, expiry_before, size)
        if grow > 0 and self.bytes_used + self._delta + grow > self.max_bytes:
            raise StateFullError(
                f"the partition's state would take {self.bytes_used + self._delta + grow} bytes, over its limit of "
                f"{self.max_bytes} (maxStateBytes; keys and values count as their JSON): delete keys you no "
                "longer need, give them a TTL, or raise the limit")
        self._delta += grow
        changes = self.changes
        if key not in changes:
            self.before.setdefault(key, (before, expiry_before))
        self.uncommitted.append((key, before, expiry_before, changes.get(key, MISSING)))
        _put(values, expiries, key, text, expiry)
        if expiry is not None:
            heapq.heappush(self.heaps.setdefault(model, []), (expiry, key))
        changes[key] = text

    def keys(self, model: str) -> List[str]:
        if model == self.model:
            return list(self._values)
        expiries = self.expiries.get(model, {})
        return [k for k in self.store.get(model, {}) if not (k in expiries and expiries[k] <= self.now)]


def _put(values: Dict[str, str], expiries: Dict[str, int], key: str, text: Optional[str], expiry: Optional[int]) -> None:
    """Set (text, expiry) at key, or remove the key for text None."""
    if text is None:
        values.pop(key, None)
        expiries.pop(key, None)
        return
    values[key] = text
    if expiry is None:
        if expiries:
            expiries.pop(key, None)
    else:
        expiries[key] = expiry
