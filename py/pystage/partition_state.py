"""The partition's state as the server holds it: per model, keys to JSON texts, changed one message at a time.

Values are kept as the JSON text the server's encoder wrote: `get` decodes a fresh copy (so a value is
only changed by assigning it), a set proves the value is JSON once, and the changes a batch sends to
the client are those texts verbatim. A message's writes wait in `uncommitted` until it succeeds (commit)
or fails (rollback); committed changes of the running request are gathered in `changes` for its reply.
The client applies them when the reply arrives and restores the whole state on every new connection
(`restoreState`), which is what makes a re-executed message see the state from before its first run.
"""
from typing import Any, Dict, Iterator, List, Optional, Tuple

from .protocol import decode_json, encode_json

# Used when hello does not name a limit: the client's own default (src/api/options.ts, maxStateBytes).
DEFAULT_MAX_STATE_BYTES = 16 * 1024 * 1024
_MISSING = object()


class StateFullError(Exception):
    """A state write would take the partition's state past its limit; the message fails, the state is unchanged."""


# Counted per entry besides its key and value: what it costs in a restoreState frame (`["",],`) and more,
# so the whole state always fits in one frame when the limit is at most half the frame limit.
ENTRY_OVERHEAD = 8


def _size(key: str, text: Optional[str]) -> int:
    """What one entry counts toward the limit: UTF-8 bytes of key and value text, plus ENTRY_OVERHEAD."""
    if text is None:
        return 0
    # ASCII (the common case) has as many bytes as characters: no encoding needed to count them.
    return ((len(key) if key.isascii() else len(key.encode("utf-8")))
            + (len(text) if text.isascii() else len(text.encode("utf-8"))) + ENTRY_OVERHEAD)


class StateJournal:
    """Every model's state on this server, and an undo log of the writes of the message running now.

    Writes go straight into the running model's dict (and the request's changes); the undo log lets a
    failed message take them back. So a read is one dict lookup and a commit clears a list."""

    __slots__ = ("store", "uncommitted", "changes", "model", "results", "max_bytes", "bytes_used", "_delta",
                 "report", "_values")

    def __init__(self) -> None:
        self.store: Dict[str, Dict[str, str]] = {}
        # The running message's undo log: (key, text before, the request's change before). Mutated in
        # place only: the executor keeps a reference and tests it for truth after every message.
        self.uncommitted: List[Tuple[str, Optional[str], Any]] = []
        # The running request's committed changes, for its reply: key -> JSON text, None for a delete.
        self.changes: Dict[str, Optional[str]] = {}
        # The model whose request is running (None: no message is running, writes are refused).
        self.model: Optional[str] = None
        # The running request's results list: its length is the index of the message running now.
        self.results: List[Any] = []
        self.max_bytes = DEFAULT_MAX_STATE_BYTES
        self.bytes_used = 0
        self._delta = 0
        # Set by hello: the client takes the changes with each reply (and restores the state).
        self.report = False
        # The running model's own dict in `store`.
        self._values: Dict[str, str] = {}

    # --- a request's life --------------------------------------------------------------------------

    def begin(self, model: str, results: List[Any]) -> None:
        self.model = model
        self.results = results
        self._values = self.store.setdefault(model, {})

    def commit(self) -> None:
        """The running message succeeded: its writes stay."""
        self.bytes_used += self._delta
        self._delta = 0
        self.uncommitted.clear()

    def rollback(self) -> None:
        """The running message failed: the state goes back to what it found."""
        values, changes = self._values, self.changes
        for key, before, change in reversed(self.uncommitted):
            if before is None:
                values.pop(key, None)
            else:
                values[key] = before
            if change is _MISSING:
                changes.pop(key, None)
            else:
                changes[key] = change
        self.uncommitted.clear()
        self._delta = 0

    def finish(self) -> Optional[bytes]:
        """End the request: its changes as the reply's `State` value (None when nothing changed or not reported)."""
        if self.uncommitted:
            self.rollback()
        if not self._values and self.model is not None:
            self.store.pop(self.model, None)  # begin's empty dict: keep no trace of a model without state
        self.model = None
        self.results = []
        self._values = {}
        if not self.changes:
            return None
        changes, self.changes = self.changes, {}
        if not self.report:
            return None
        parts = [f"[{_json_key(k)},{t}]" if t is not None else f"[{_json_key(k)}]" for k, t in changes.items()]
        return ("[%s]" % ",".join(parts)).encode("utf-8")

    # --- what the client says ----------------------------------------------------------------------

    def restore(self, states: Any) -> int:
        """Replace every model's state with the client's (`{model: [[key, value], ...]}`); the number of keys."""
        if type(states) is not dict:
            raise TypeError("States must be a JSON object of model name to [[key, value], ...]")
        store: Dict[str, Dict[str, str]] = {}
        used = 0
        for model, entries in states.items():
            if type(entries) is not list:
                raise TypeError(f"the state of model {model!r} must be a list of [key, value] pairs")
            values: Dict[str, str] = {}
            for entry in entries:
                if type(entry) is not list or len(entry) != 2 or type(entry[0]) is not str:
                    raise TypeError(f"a state entry of model {model!r} is not a [key, value] pair")
                text = encode_json(entry[1])
                values[entry[0]] = text
                used += _size(entry[0], text)
            store[model] = values
        self.store = store
        self.bytes_used = used
        self.uncommitted.clear()
        self.changes.clear()
        self._delta = 0
        return sum(len(values) for values in store.values())

    def drop(self, model: str) -> None:
        """A removed model's state goes with it."""
        values = self.store.pop(model, None)
        if values:
            self.bytes_used -= sum(_size(k, t) for k, t in values.items())

    # --- a model's view --------------------------------------------------------------------------

    def lookup(self, model: str, key: str) -> Optional[str]:
        if model == self.model:
            return self._values.get(key)
        values = self.store.get(model)
        return None if values is None else values.get(key)

    def write(self, model: str, key: str, text: Optional[str]) -> None:
        if model != self.model:
            raise RuntimeError("the state can only change while a message runs (inside execute)")
        values = self._values
        before = values.get(key)
        grow = _size(key, text) - _size(key, before)
        if grow > 0 and self.bytes_used + self._delta + grow > self.max_bytes:
            raise StateFullError(
                f"the partition's state would take {self.bytes_used + self._delta + grow} bytes, over its limit of "
                f"{self.max_bytes} (maxStateBytes): delete keys you no longer need, or raise the limit")
        self._delta += grow
        changes = self.changes
        self.uncommitted.append((key, before, changes.get(key, _MISSING)))
        if text is None:
            values.pop(key, None)
        else:
            values[key] = text
        changes[key] = text

    def keys(self, model: str) -> List[str]:
        return list(self._values if model == self.model else self.store.get(model, {}))


def _json_key(key: str) -> str:
    """A key as a JSON string; printable ASCII without quotes or backslashes needs no encoder."""
    if key.isascii() and key.isprintable() and '"' not in key and "\\" not in key:
        return f'"{key}"'
    return encode_json(key)


def _to_text(value: Any) -> str:
    """A value's JSON text. An int's is its decimal form, no encoder needed (the common counter case)."""
    if type(value) is int:
        return str(value)
    return encode_json(value)


def _from_text(text: str) -> Any:
    """A fresh copy of a value from its JSON text (plain non-negative integers parse without the decoder)."""
    if text.isdigit() and text.isascii():
        return int(text)
    return decode_json(text)


def _check_key(key: Any) -> str:
    if type(key) is not str:
        raise TypeError(f"state keys are strings, not {type(key).__name__}")
    return key


class PartitionState:
    """`self.context.state`: one model's view of the partition's state, a dict-like of JSON values."""

    __slots__ = ("_journal", "_model")

    def __init__(self, journal: StateJournal, model: str) -> None:
        self._journal = journal
        self._model = model

    def get(self, key: str, default: Any = None) -> Any:
        """A copy of the value at key, or default."""
        if type(key) is not str:
            _check_key(key)
        text = self._journal.lookup(self._model, key)
        return default if text is None else _from_text(text)

    def __getitem__(self, key: str) -> Any:
        text = self._journal.lookup(self._model, _check_key(key))
        if text is None:
            raise KeyError(key)
        return _from_text(text)

    def __setitem__(self, key: str, value: Any) -> None:
        if type(key) is not str:
            _check_key(key)
        try:
            text = _to_text(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"state values must be JSON (value of {key!r}): {exc}") from exc
        self._journal.write(self._model, key, text)

    def __delitem__(self, key: str) -> None:
        if self._journal.lookup(self._model, _check_key(key)) is None:
            raise KeyError(key)
        self._journal.write(self._model, key, None)

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        text = self._journal.lookup(self._model, _check_key(key))
        if text is None:
            if default is _MISSING:
                raise KeyError(key)
            return default
        self._journal.write(self._model, key, None)
        return decode_json(text)

    def __contains__(self, key: object) -> bool:
        return type(key) is str and self._journal.lookup(self._model, key) is not None

    def keys(self) -> List[str]:
        return self._journal.keys(self._model)

    def items(self) -> List[Any]:
        return [(k, self[k]) for k in self.keys()]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def __repr__(self) -> str:
        return f"PartitionState(model={self._model!r}, keys={len(self)})"
