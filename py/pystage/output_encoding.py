"""A model's output as JSON bytes: plain values through the C encoder, what numpy and friends return converted.

The common case (dicts of str, int, float, bool, None, lists) costs one C-encoder call, as before. Only
when that refuses a value (TypeError for an unknown type, ValueError for NaN or infinity) does the slow
path below walk the output and convert, per the type table in the README:

- numpy scalars and arrays, recognised by duck typing (`.tolist()`, else `.item()`), so the server never
  imports numpy: their Python values, arrays as nested lists;
- tuple -> list (the C encoder already does this);
- datetime, date, time -> ISO 8601 text (`isoformat()`), numpy datetime64 too (at its own precision);
- Decimal -> a JSON number with exactly its digits (`str(d)`), never through a float;
- NaN and infinities (float, numpy or Decimal) -> an error, or null when the server runs with --nan-as-null;
- set, frozenset -> an error: they have no order, so the output would not be reproducible.
"""
import math
from datetime import date, time
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any, Callable, List, Set

from .protocol import encode_json

_FLOAT_REPR = float.__repr__
_INT_REPR = int.__repr__
# Types seen converting through .tolist()/.item() (numpy's scalar and array types, in practice); bounded
# in case a model makes classes on the fly.
_ARRAY_TYPES: Set[type] = set()
_MAX_ARRAY_TYPES = 256


class OutputEncodingError(ValueError):
    """A value in a model's output that has no JSON form; `path` locates it (keys and indices, outermost first)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: List[Any] = []

    def __str__(self) -> str:
        where = "output" + "".join(f"[{key!r}]" for key in self.path)
        return f"{where}: {self.reason}"


class OutputEncoder:
    """Encodes model outputs. `nan_as_null` writes NaN and infinities as null instead of refusing them."""

    __slots__ = ("nan_as_null",)

    def __init__(self, nan_as_null: bool = False) -> None:
        self.nan_as_null = nan_as_null

    def encode(self, value: Any) -> bytes:
        """The UTF-8 JSON of `value`; raises OutputEncodingError (a ValueError) naming what is not JSON."""
        try:
            text = encode_json(value)
        except (TypeError, ValueError):
            # Not plain JSON as it stands: convert what the type table allows, refuse the rest by name.
            parts: List[str] = []
            out = parts.append
            # The C encoder just refused the whole: walk a top-level container without asking it again.
            if type(value) is dict:
                self._walk_dict(value, out)
            elif type(value) is list:
                self._walk_list(value, out)
            else:
                self._write(value, out)
            text = "".join(parts)
        return text.encode("utf-8")

    def _write(self, value: Any, out: Callable[[str], None]) -> None:
        # The exact types most outputs hold first (one type() each), then everything by isinstance.
        kind = type(value)
        if kind is str:
            out(encode_basestring(value))
        elif kind is float:
            out(_FLOAT_REPR(value) if math.isfinite(value) else self._non_finite(value))
        elif kind is int:
            out(_INT_REPR(value))
        elif kind is dict:
            self._write_dict(value, out)
        elif kind is list:
            self._write_list(value, out)
        elif kind in _ARRAY_TYPES:
            self._write(_array_value(value), out)
        else:
            self._write_other(value, out)

    def _write_other(self, value: Any, out: Callable[[str], None]) -> None:
        if isinstance(value, str):
            out(encode_basestring(value))
        elif value is None:
            out("null")
        elif value is True:
            out("true")
        elif value is False:
            out("false")
        elif isinstance(value, int):
            out(_INT_REPR(value))
        elif isinstance(value, float):
            out(_FLOAT_REPR(value) if math.isfinite(value) else self._non_finite(value))
        elif isinstance(value, dict):
            self._write_dict(value, out)
        elif isinstance(value, (list, tuple)):
            self._write_list(value, out)
        elif isinstance(value, Decimal):
            out(str(value) if value.is_finite() else self._non_finite(value))
        elif isinstance(value, (date, time)):  # datetime is a date
            out(encode_basestring(value.isoformat()))
        elif isinstance(value, (set, frozenset)):
            raise OutputEncodingError(f"a {type(value).__name__} has no order, so it has no reproducible JSON "
                                      "form: return a list (e.g. sorted(...))")
        else:
            converted = _array_value(value)
            # Remembered, so the next value of this type (np.float32, ...) skips the isinstance chain.
            if len(_ARRAY_TYPES) < _MAX_ARRAY_TYPES:
                _ARRAY_TYPES.add(type(value))
            self._write(converted, out)

    def _write_dict(self, value: Any, out: Callable[[str], None]) -> None:
        try:
            out(encode_json(value))  # a plain part of an otherwise unusual output: the C encoder does it whole
        except (TypeError, ValueError):
            self._walk_dict(value, out)

    def _walk_dict(self, value: Any, out: Callable[[str], None]) -> None:
        out("{")
        first = True
        for key, item in value.items():
            if not first:
                out(",")
            first = False
            try:
                out(self._key(key))
                out(":")
                self._write(item, out)
            except OutputEncodingError as exc:
                exc.path.insert(0, key)
                raise
        out("}")

    def _write_list(self, value: Any, out: Callable[[str], None]) -> None:
        try:
            out(encode_json(value))  # e.g. a numpy array's .tolist(): plain floats, converted in C
        except (TypeError, ValueError):
            self._walk_list(value, out)

    def _walk_list(self, value: Any, out: Callable[[str], None]) -> None:
        out("[")
        for index, item in enumerate(value):
            if index:
                out(",")
            try:
                self._write(item, out)
            except OutputEncodingError as exc:
                exc.path.insert(0, index)
                raise
        out("]")

    def _key(self, key: Any) -> str:
        """An object key as JSON text: strings as they are, and json.dumps's conversions of numbers,
        booleans and None (numpy scalar keys first become their Python values)."""
        if isinstance(key, str):
            return encode_basestring(key)
        if key is True or key is False or key is None:
            return '"%s"' % {True: "true", False: "false", None: "null"}[key]
        if isinstance(key, int):
            return '"%s"' % _INT_REPR(key)
        if isinstance(key, float) and math.isfinite(key):
            return '"%s"' % _FLOAT_REPR(key)
        if isinstance(key, (float, Decimal, date, time, tuple, frozenset)):
            raise OutputEncodingError(f"a key must be a string or a number, not {type(key).__name__} {key!r}")
        return self._key(_array_value(key))

    def _non_finite(self, value: Any) -> str:
        if self.nan_as_null:
            return "null"
        raise OutputEncodingError(f"{value} is not valid JSON: return None for it, or run the stage with "
                                  "--nan-as-null (API: nanAsNull: true) to write null")


def _array_value(value: Any) -> Any:
    """A numpy scalar's or array's Python value (`.tolist()`, else `.item()`); refuses any other type."""
    if getattr(getattr(value, "dtype", None), "kind", None) == "M":
        # numpy datetime64: its tolist() is an int at nanosecond precision, so ask for its ISO 8601 text.
        try:
            return value.astype(str).tolist()
        except Exception as exc:
            raise OutputEncodingError(f"{type(value).__name__} datetime could not be written as text: {exc}") from exc
    for method in ("tolist", "item"):
        convert = getattr(value, method, None)
        if callable(convert):
            try:
                converted = convert()
            except Exception as exc:
                raise OutputEncodingError(f"{type(value).__name__}.{method}() failed: {exc}") from exc
            # A type whose conversion gives itself back would loop forever.
            if type(converted) is type(value):
                break
            return converted
    raise OutputEncodingError(f"a {type(value).__name__} is not JSON: return dicts, lists, str, int, float, "
                              "bool, None, or the types in the README's type table")
