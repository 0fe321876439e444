"""Protocol v1 vocabulary: reply codes, command names, error types, and reply payload building."""
import json
from typing import Any, Callable, Dict, Optional, Tuple

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
# Not replies: the Cmd of a progress frame and of a model's request to the host (Code 2 and 3).
PROGRESS_FRAME = "progress"
HOST_REQUEST_FRAME = "hostRequest"

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
    """An error answer: its Code and its Error object (Type, Message, Traceback). A refused request (-1), a
    failed model (-2), a damaged frame (-3), a refused connection (-4), or one failed message of a batch:
    built where the failure is found, it stays this one type until its reply is encoded."""

    # One per failed message of a batch: slots make it about as cheap to build as the dict it replaces.
    __slots__ = ("error_type", "message", "code", "traceback_text")

    def __init__(self, error_type: str, message: str, code: int = BAD_REQUEST,
                 traceback_text: Optional[str] = None) -> None:
        Exception.__init__(self, message)
        self.error_type = error_type
        self.message = message
        self.code = code
        self.traceback_text = traceback_text

    def error(self) -> Dict[str, Any]:
        """The Error object of its reply (or of its batch item)."""
        return {"Type": self.error_type, "Message": self.message, "Traceback": self.traceback_text}


def reply(cmd: Optional[str], req_id: Optional[int], code: int, result: Any = None) -> Dict[str, Any]:
    """A reply payload of a command that succeeded, as a dict (the hot path builds bytes, below)."""
    return {"Cmd": cmd, "Id": req_id, "Code": code, "Result": result}


def encode_payload(payload: Any) -> bytes:
    return encode_json(payload).encode("utf-8")


def error_payload(cmd: Optional[str], req_id: Optional[int], error: RequestError) -> bytes:
    """The reply payload refusing a request (or answering it with a failure): Result null, then Error."""
    return encode_payload({"Cmd": cmd, "Id": req_id, "Code": error.code, "Result": None, "Error": error.error()})


# --- payloads built from bytes ----------------------------------------------------------------------
# The hot path writes its payloads straight from bytes templates, around JSON it already holds as bytes
# (model outputs, the state), instead of building a dict to encode. Every template is here, filled in
# once at import from the constants above, and each payload is assembled by one function.

# Every hostReply payload starts so (the client writes it so): the server spots them without parsing.
HOST_REPLY_PREFIX = b'{"Cmd":"%s"' % HOST_REPLY.encode()
# One item of a batch's Result array (not Lean): an output's JSON, or no output.
ITEM_RESULT = b'{"Code":%d,"Result":%%s}' % OK
ITEM_NO_OUTPUT = b'{"Code":%d,"Result":null}' % NO_OUTPUT

# Cmd and Code filled in here, once; the Id (bytes, see id_bytes) per payload. The `%s` right after the
# head of a reply is its State field, or nothing.
_HEAD = b'{"Cmd":"%s","Id":%%s,"Code":%d,'
_MODEL_RESULT = _HEAD % (EXECUTE_MODEL.encode(), OK) + b'%s"Result":%s}'
_MODEL_NO_OUTPUT = _HEAD % (EXECUTE_MODEL.encode(), NO_OUTPUT) + b'%s"Result":null}'
_MODEL_OUTPUT_FILE = _HEAD % (EXECUTE_MODEL.encode(), OK) + b'%s"Result":null,"OutputFile":%s}'
# Result stays last in a batch reply: clients split it off without parsing the rest.
_BATCH = _HEAD % (EXECUTE_BATCH.encode(), OK) + b'%s"Result":%s}'
_BATCH_LEAN = _HEAD % (EXECUTE_BATCH.encode(), OK) + b'"Errors":%s,"Files":%s,%s"Result":%s}'
_STATE = b'"State":%s,'
_PROGRESS = _HEAD % (PROGRESS_FRAME.encode(), PROGRESS) + b'"Result":{"Done":%d}}'
_HOST_REQUEST = (_HEAD % (HOST_REQUEST_FRAME.encode(), HOST_REQUEST)
                 + b'"Seq":%d,"Kind":%s,"Name":%s,"Index":%d,"TimeoutMs":%d,%s"Payload":%s}')
_TTL = b'"TtlMs":%d,'


def id_bytes(req_id: Optional[int]) -> bytes:
    return b"null" if req_id is None else b"%d" % req_id


def model_reply(req_id: Optional[int], output: Optional[bytes], state: Optional[bytes],
                output_file: Optional[str] = None) -> bytes:
    """executeModel's reply: the output's JSON (None: no output, Code 1), or the spool file it went to."""
    state_part = b"" if state is None else _STATE % state
    if output_file is not None:
        return _MODEL_OUTPUT_FILE % (id_bytes(req_id), state_part, encode_payload(output_file))
    if output is None:
        return _MODEL_NO_OUTPUT % (id_bytes(req_id), state_part)
    return _MODEL_RESULT % (id_bytes(req_id), state_part, output)


def batch_reply(req_id: Optional[int], results: bytes, state: Optional[bytes],
                lean: Optional[Tuple[bytes, bytes]] = None) -> bytes:
    """executeBatch's reply around the JSON array of its Result; `lean` is (Errors, Files) for a Lean one."""
    state_part = b"" if state is None else _STATE % state
    if lean is None:
        return _BATCH % (id_bytes(req_id), state_part, results)
    return _BATCH_LEAN % (id_bytes(req_id), lean[0], lean[1], state_part, results)


def progress_frame(req_id: Optional[int], done: int) -> bytes:
    """A progress frame's payload (Code 2): the request with this Id has `done` messages done."""
    return _PROGRESS % (id_bytes(req_id), done)


def host_request_frame(req_id: int, seq: int, kind: str, name: str, index: int, timeout_ms: int,
                       ttl_ms: Optional[int], payload: bytes) -> bytes:
    """A hostRequest frame's payload (Code 3) asking the host on behalf of the running request."""
    return _HOST_REQUEST % (id_bytes(req_id), seq, encode_payload(kind), encode_payload(name), index, timeout_ms,
                            b"" if ttl_ms is None else _TTL % ttl_ms, payload)
