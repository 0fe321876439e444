"""Turning a frame's payload into a validated request, or into the reason it is refused."""
from typing import Any, Dict, NamedTuple, Optional, Tuple

from .batch_lines import decode_batch_lines
from .protocol import BAD_FRAME, BAD_JSON, COMMAND_VERSION, COMMANDS, RequestError, decode_json

_KNOWN = frozenset(COMMANDS)
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
