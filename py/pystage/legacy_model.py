"""Models written for the original Python server, run unchanged.

Such a class is constructed as `cls(host, port, modelOptions, logger)` (host and port as strings) and
its `execute` returns a JSON *string*: blank means "no output". It is recognised without flags: a class
with a base named `ModelInstance` (the base module those teams ship as `common/ModelInstance.py`), or
whose constructor takes exactly those four arguments. Its options get `PartitionHash` = the partition.
"""
import inspect
import logging
from typing import Any, Callable, Dict, Optional

from .protocol import decode_json

LEGACY_BASE = "ModelInstance"
_LEGACY_PARAMS = 4


def is_legacy_class(cls: type) -> bool:
    """True for a class in the original server's style (see the module doc); ordinary models are False."""
    if any(base.__name__ == LEGACY_BASE for base in cls.__mro__[1:]) or cls.__name__ == LEGACY_BASE:
        return True
    init = cls.__dict__.get("__init__")
    if init is None:
        return False
    try:
        params = list(inspect.signature(init).parameters.values())[1:]
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    # Exactly four required positional parameters and nothing else: `(host, port, modelOptions, logger)`.
    return (len(positional) == _LEGACY_PARAMS and len(positional) == len(params)
            and all(p.default is p.empty for p in positional))


def construct_legacy(cls: type, options: Dict[str, Any], host: str, port: str, partition: int,
                     logger: logging.Logger) -> Any:
    """Build the instance as the original server did, with PartitionHash = this server's partition."""
    model_options = dict(options)
    model_options["PartitionHash"] = partition
    return cls(host, port, model_options, logger)


def adapt_execute(execute: Callable[[Dict[str, Any]], Any]) -> Callable[[Dict[str, Any]], Optional[Dict[str, Any]]]:
    """An execute returning pystage's dict-or-None from one returning a JSON string (blank = no output)."""

    def run(msg: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        result = execute(msg)
        if result is None:
            return None
        if isinstance(result, (bytes, bytearray)):
            result = bytes(result).decode("utf-8")
        if isinstance(result, str):
            if not result.strip():
                return None
            try:
                value = decode_json(result)
            except ValueError as exc:
                raise ValueError(f"execute returned a string that is not JSON: {exc}") from exc
            if value is None:
                return None
            return value  # not a dict: refused as BadModelOutput like any other result
        return result

    return run


def expand_leading_tabs(source: bytes) -> bytes:
    """Indentation as Python 2 read it: each tab to the next multiple of 8 columns (Python 3 raises TabError
    on files mixing tabs and spaces). Only leading whitespace changes, never a tab inside a line."""
    lines = source.split(b"\n")
    for i, line in enumerate(lines):
        stripped = line.lstrip(b" \t")
        indent = line[:len(line) - len(stripped)]
        if b"\t" in indent:
            lines[i] = indent.expandtabs(8) + stripped
    return b"\n".join(lines)
