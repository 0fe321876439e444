"""Turning a frame's payload into a validated request, or into the reason it is refused."""
from typing import Any, Dict, NamedTuple, Optional, Tuple

from .batch_lines import decode_batch_lines
from .frame_decoder import BAD_CHECKSUM, BAD_VERSION, MISSING_END, TOO_LONG, FrameEvent
from .protocol import BAD_FRAME, BAD_JSON, COMMAND_VERSION, COMMANDS, RequestError, decode_json

_KNOWN = frozenset(COMMANDS)
_FRAME_ERROR_MESSAGES = {
    BAD_VERSION: "frame VERSION is neither 1 (MD5) nor 2 (CRC32)",
    TOO_LONG: "frame LENGTH exceeds the maximum frame size",
    MISSING_END: "no END marker where the frame's LENGTH says it ends",
    BAD_CHECKSUM: "frame CHECKSUM does not match its payload",
}
_new_tuple = tuple.__new__


class ParsedRequest(NamedTuple):
    """A request; when `error` is set it must be refused, replying with whatever cmd/req_id could be read."""

    cmd: Optional[str]
    req_id: Optional[int]
    options: Dict[str, Any]
    model_options: Any
    error: Optional[RequestError]


def _refused(cmd: Optional[str], req_id: Optional[int], error: RequestError) -> ParsedRequest:
    return ParsedRequest(cmd, req_id, {}, None, error)


def parse_payload(payload: bytes) -> Any:
    """The JSON object in a payload; RequestError(-3, bad-json) if it is not one."""
    try:
        value = decode_json(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise RequestError(BAD_JSON, f"payload is not UTF-8 JSON: {exc}", BAD_FRAME) from exc
    if type(value) is not dict:
        raise RequestError(BAD_JSON, f"payload is a JSON {type(value).__name__}, not an object", BAD_FRAME)
    return value


def read_ids(request: Any) -> Tuple[Optional[str], Optional[int]]:
    """Cmd and Id as far as they can be read, for replies to requests that are refused anyway."""
    if type(request) is not dict:
        return None, None
    cmd = request.get("Cmd")
    req_id = request.get("Id")
    return (cmd if isinstance(cmd, str) else None), (req_id if type(req_id) is int else None)


def parse_request(payload: bytes) -> ParsedRequest:
    try:
        request = parse_payload(payload)
    except RequestError as exc:
        # An executeBatch in the line layout is still served: only its bad messages fail.
        recovered = decode_batch_lines(payload)
        if recovered is None:
            return _refused(None, None, exc)
        request = recovered
    cmd = request.get("Cmd")
    req_id = request.get("Id")
    options = request.get("CmdOptions")
    version = request.get("CmdVer", COMMAND_VERSION)
    # The well-formed case first, in as few steps as possible: it is every request under load.
    if (type(req_id) is int and type(cmd) is str and cmd in _KNOWN and type(options) is dict
            and type(version) is int and version == COMMAND_VERSION):
        return _new_tuple(ParsedRequest, (cmd, req_id, options, request.get("ModelOptions"), None))
    return _check_request(request, cmd, req_id, options)


def _check_request(request: Dict[str, Any], cmd: Any, req_id: Any, options: Any) -> ParsedRequest:
    """The slow path: find what is wrong, or accept what the fast path did not expect (no Id, no options)."""
    if type(req_id) is not int:
        if req_id is not None:
            return _refused(cmd if isinstance(cmd, str) else None, None,
                            RequestError("BadId", f"Id must be an integer, not {type(req_id).__name__}"))
    if type(cmd) is not str or cmd not in _KNOWN:
        if cmd is None:
            return _refused(None, req_id, RequestError("MissingCommand", "the request has no Cmd"))
        if not isinstance(cmd, str):
            return _refused(None, req_id, RequestError("UnknownCommand", "Cmd must be a string"))
        return _refused(cmd, req_id, RequestError("UnknownCommand", f"unknown command {cmd!r}"))
    version = request.get("CmdVer", COMMAND_VERSION)
    if type(version) is not int or version != COMMAND_VERSION:
        return _refused(cmd, req_id, RequestError(
            "BadCmdVer", f"CmdVer {version!r} is not supported (this server speaks {COMMAND_VERSION})"))
    if options is None:
        options = {}
    elif type(options) is not dict:
        return _refused(cmd, req_id, RequestError("BadOption", "CmdOptions must be a JSON object"))
    return ParsedRequest(cmd, req_id, options, request.get("ModelOptions"), None)


def refused_frame(event: FrameEvent) -> ParsedRequest:
    """A frame the decoder could not deliver, as a request refused with -3 (Error.Type: the decoder's kind).

    Its Cmd and Id are those of its payload when that still parses (a bad checksum), else None."""
    kind = event.kind or "bad-frame"
    cmd, req_id = None, None
    if event.payload is not None:
        try:
            cmd, req_id = read_ids(parse_payload(event.payload))
        except RequestError:
            pass
    return _refused(cmd, req_id, RequestError(kind, _FRAME_ERROR_MESSAGES.get(kind, kind), BAD_FRAME))
