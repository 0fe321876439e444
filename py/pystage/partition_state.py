"""`self.context.state`: a model's dict-like view of the partition's state (kept in state_journal.py).

Values are kept as the JSON text the server's encoder wrote: `get` decodes a fresh copy (so a value is
only changed by assigning it), a set proves the value is JSON once, and the changes a batch sends to
the client are those texts verbatim. A message's writes wait in the journal's undo log until everything
that can fail for it has succeeded (commit) or something failed (rollback). The client applies a
request's changes when its reply arrives and restores the whole state on every new connection
(`restoreState`), which is what makes a re-executed message see the state from before its first run.
"""
import math
from typing import Any, Iterator, List, Optional

from .protocol import decode_json, encode_json
from .state_journal import DEFAULT_MAX_STATE_BYTES, MISSING as _MISSING, StateFullError, StateJournal

__all__ = ["DEFAULT_MAX_STATE_BYTES", "PartitionState", "StateFullError", "StateJournal"]


def _to_text(value: Any) -> str:
    """A value's JSON text. An int's is its decimal form, no encoder needed (the common counter case)."""
    if type(value) is int:
        return str(value)
    return encode_json(value)


def _value_text(key: str, value: Any) -> str:
    try:
        return _to_text(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"state values must be JSON (value of {key!r}): {exc}") from exc


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
        self._journal.write(self._model, key, _value_text(key, value))

    def set(self, key: str, value: Any, ttl: Optional[float] = None) -> None:
        """Set key to value; with `ttl` (seconds, > 0) the key reads as absent from `ttl` seconds after the
        time of the message's batch on. Without it the model's default TTL applies (--state-ttl), if any."""
        _check_key(key)
        ttl_ms = None
        if ttl is not None:
            if type(ttl) not in (int, float) or not math.isfinite(ttl) or ttl <= 0:
                raise ValueError(f"ttl must be a positive number of seconds, not {ttl!r}")
            ttl_ms = max(1, round(ttl * 1000))
        self._journal.write(self._model, key, _value_text(key, value), ttl_ms)

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
