"""The executeBatch line layout: when a batch does not decode as a whole, each message is decoded alone.

Clients lay out an executeBatch payload one message per line:

    {"Cmd":"executeBatch",...,"CmdOptions":{...,"Inputs":[\\n
    MSG0,\\n
    MSG1,\\n
    ...
    MSGN\\n
    ]}}

The payload is valid JSON when every message is. When one is not (bad JSON, bad UTF-8, nested too deep
for the decoder), the layout still tells where each message starts and ends, so that message alone
fails (a -1 BadInput item) and the others run with their own indices.
"""
from typing import Any, Dict, List, Optional

from .protocol import EXECUTE_BATCH, RequestError, decode_json

_HEADER_END = b'"Inputs":['
_TRAILER = b"]}}"


class BadMessage:
    """Stands in Inputs for a message that did not decode: its item is this -1 BadInput error."""

    __slots__ = ("error",)

    def __init__(self, message: str) -> None:
        self.error = RequestError("BadInput", message)


def decode_message(line: bytes) -> Any:
    """One message of a batch, or a BadMessage saying why it does not decode."""
    try:
        return decode_json(line.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return BadMessage(f"message is not valid UTF-8: {exc}")
    except RecursionError:
        return BadMessage("message is nested too deeply to decode")
    except ValueError as exc:
        return BadMessage(f"message is not valid JSON: {exc}")


def decode_batch_lines(payload: bytes) -> Optional[Dict[str, Any]]:
    """The executeBatch request in a payload that failed to decode as a whole, its messages decoded one by
    one; None when the payload does not have the line layout or its header is not an executeBatch request."""
    pieces = payload.split(b"\n")
    if len(pieces) < 2 or not pieces[0].endswith(_HEADER_END) or pieces[-1] != _TRAILER:
        return None
    lines = pieces[1:-1]
    for line in lines[:-1]:
        if not line.endswith(b","):
            return None
    try:
        request = decode_json((pieces[0] + _TRAILER).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if type(request) is not dict or request.get("Cmd") != EXECUTE_BATCH:
        return None
    options = request.get("CmdOptions")
    if type(options) is not dict:
        return None
    inputs: List[Any] = [decode_message(line[:-1]) for line in lines[:-1]]
    if lines:
        inputs.append(decode_message(lines[-1]))
    options["Inputs"] = inputs
    return request
