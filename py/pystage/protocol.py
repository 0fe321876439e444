"""Protocol v1 vocabulary: reply codes, command names, error types, and reply payload building."""
import json
from typing import Any, Callable, Dict, Optional

PROTOCOL_VERSION = 1
COMMAND_VERSION = 1

OK = 0
NO_OUTPUT = 1
# Not a reply: a progress frame of a request that is still running (see progress.py).
PROGRESS = 2
# Not a reply either: a model asks the host while the request with this Id runs (host_channel.py).
HOST_REQUEST = 3
BAD_REQUEST = -1
MODEL_ERROR = -2
BAD_FRAME = -3
NOT_AUTHENTICATED = -4
# Only in a hostReply, from the client: the host could not answer the model's request.
HOST_FAILED = -5

HELLO = "hello"
ADD_MODEL = "addModel"
UPDATE_MODEL = "updateModel"
REMOVE_MODEL = "removeModel"
INIT_MODEL = "initModel"
EXECUTE_MODEL = "executeModel"
EXECUTE_BATCH = "executeBatch"
SERVER_STATUS = "serverStatus"
STOP_SERVER = "stopServer"
RESTORE_STATE = "restoreState"
# Not a command: the client's answer to a hostRequest frame (host_channel.py), read by the server itself.
HOST_REPLY = "hostReply"

COMMANDS = (
    HELLO, ADD_MODEL, UPDATE_MODEL, REMOVE_MODEL, INIT_MODEL,
    EXECUTE_MODEL, EXECUTE_BATCH, SERVER_STATUS, STOP_SERVER, RESTORE_STATE,
)

# Error.Type of -3 replies: the decoder's kinds, so both ends of the wire name them alike.
BAD_JSON = "bad-json"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# Prebuilt once: json.dumps/loads with keyword arguments would build a new coder on every call.
# NaN and Infinity are refused both ways because the other end is a strict JSON parser.
_decoder = json.JSONDecoder(parse_constant=_reject_constant)
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_scan_once = _decoder.scan_once


def decode_json(text: str) -> Any:
    """json.loads for a whole document. The common case (no surrounding whitespace) goes straight to
    the C scanner, skipping JSONDecoder.decode's per-call regex and wrapper calls."""
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        end = -1
    if end == len(text):
        return value
    return _decoder.decode(text)  # whitespace around the value, or an error worth its full message


def _make_one_shot_encoder() -> Callable[[Any], str]:
    # JSONEncoder.encode builds a new C encoder on every call; build it once. No circular-reference
    # check: a circular result fails with RecursionError instead, which callers treat like any
    # unencodable value.
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return _encoder.encode
    iterencode = make(None, _encoder.default, json.encoder.encode_basestring, None, ":", ",", False, False, False)

    def encode(value: Any) -> str:
        return "".join(iterencode(value, 0))

    return encode


encode_json = _make_one_shot_encoder()


class RequestError(Exception):
    """A request the server refuses: Code -1 (or another code) with an Error.Type naming why."""

    def __init__(self, error_type: str, message: str, code: int = BAD_REQUEST,
                 traceback_text: Optional[str] = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.code = code
        self.traceback_text = traceback_text

    def error(self) -> Dict[str, Any]:
        return error_object(self.error_type, self.message, self.traceback_text)


def error_object(error_type: str, message: str, traceback_text: Optional[str] = None) -> Dict[str, Any]:
    return {"Type": error_type, "Message": message, "Traceback": traceback_text}


def reply(cmd: Optional[str], req_id: Optional[int], code: int, result: Any = None,
          error: Optional[Dict[str, Any]] = None, output_file: Optional[str] = None) -> Dict[str, Any]:
    """A reply payload; Error is present only when the code is negative."""
    payload: Dict[str, Any] = {"Cmd": cmd, "Id": req_id, "Code": code, "Result": result}
    if output_file is not None:
        payload["OutputFile"] = output_file
    if error is not None:
        payload["Error"] = error
    return payload


def error_reply(cmd: Optional[str], req_id: Optional[int], code: int, error_type: str, message: str,
                traceback_text: Optional[str] = None) -> Dict[str, Any]:
    return reply(cmd, req_id, code, None, error_object(error_type, message, traceback_text))


def encode_payload(payload: Dict[str, Any]) -> bytes:
    return encode_json(payload).encode("utf-8")
