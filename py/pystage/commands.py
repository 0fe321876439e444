"""The commands of protocol v1: one request in, one reply payload out."""
import logging
import os
import platform
import time
from typing import Any, Callable, Dict, Optional

from .model_execution import ModelExecutor
from .model_registry import LoadedModel, ModelRegistry
from .session import Session
from .protocol import (
    ADD_MODEL, COMMANDS, EXECUTE_BATCH, EXECUTE_MODEL, HELLO, INIT_MODEL, OK, PROTOCOL_VERSION,
    REMOVE_MODEL, RESTORE_STATE, SERVER_STATUS, STOP_SERVER, UPDATE_MODEL, RequestError, encode_payload, error_payload,
    reply,
)
from .request_parser import ParsedRequest
from .shutdown import ShutdownRequested

_log = logging.getLogger("pystage.commands")

# Commands whose refusal becomes the caller's error (ModelLoadError), so the log need not say it again.
_LOAD_COMMANDS = frozenset((ADD_MODEL, UPDATE_MODEL, INIT_MODEL, REMOVE_MODEL))


class CommandHandler:
    """Runs requests against the model registry. A reply is bytes: the payload of one frame."""

    def __init__(self, uniq: str, registry: ModelRegistry, executor: ModelExecutor) -> None:
        self.uniq = uniq
        self.registry = registry
        self._execute_model = executor.execute_model
        self._execute_batch = executor.execute_batch
        self.started = time.monotonic()
        self.stop_requested = False
        self._generic: Dict[str, Callable[[Dict[str, Any], Any], Any]] = {
            ADD_MODEL: self._add_model,
            UPDATE_MODEL: self._update_model,
            REMOVE_MODEL: self._remove_model,
            INIT_MODEL: self._init_model,
            SERVER_STATUS: self._server_status,
            STOP_SERVER: self._stop_server,
            RESTORE_STATE: self._restore_state,
        }

    def handle(self, request: ParsedRequest, session: Optional[Session] = None) -> bytes:
        """The reply payload to a parsed request (refused or not). Never raises for a bad request or model.

        `session` belongs to the connection the request came on: hello negotiates it, executeBatch
        sends progress frames through it while it runs."""
        cmd, req_id = request.cmd, request.req_id
        if request.error is not None:
            return self.refuse(cmd, req_id, request.error)
        try:
            if cmd == EXECUTE_BATCH:
                return self._execute_batch(req_id, request.options, None if session is None else session.progress)
            if cmd == EXECUTE_MODEL:
                return self._execute_model(req_id, request.options)
            if cmd == HELLO:
                result = self._hello(request.options, session)
            else:
                result = self._generic[cmd](request.options, request.model_options)
            return encode_payload(reply(cmd, req_id, OK, result))
        except RequestError as exc:
            return self.refuse(cmd, req_id, exc)
        except ShutdownRequested:
            raise
        except Exception as exc:
            # A bug of the server's own, or something a model did that no guard expected: answer it
            # and keep serving rather than die.
            _log.exception("request failed inside the server", extra={"cmd": cmd, "id": req_id})
            return self.refuse(cmd, req_id, RequestError("InternalError", f"{type(exc).__name__}: {exc}"))

    def refuse(self, cmd: Optional[str], req_id: Optional[int], error: RequestError) -> bytes:
        # A model that cannot load is the caller's error to report (once, not once per partition): only
        # refusals nobody else reports are warnings.
        level = logging.INFO if cmd in _LOAD_COMMANDS else logging.WARNING
        _log.log(level, "request refused", extra={
            "cmd": cmd, "id": req_id, "code": error.code, "type": error.error_type, "error": error.message})
        return error_payload(cmd, req_id, error)

    # --- generic commands: return the Result, or raise RequestError -------------------------------

    def _hello(self, options: Dict[str, Any], session: Optional[Session]) -> Dict[str, Any]:
        # The token was checked by the connection gate (ModelServer) before this runs.
        result: Dict[str, Any] = {"Uniq": self.uniq, "Pid": os.getpid(), "ProtocolVersion": PROTOCOL_VERSION,
                                  "Commands": list(COMMANDS)}
        # Without a connection (a direct call) the options are still checked and echoed.
        result.update((session or Session(_no_frames)).negotiate(options))
        # State, Host and Partition belong to the server (one client at a time), not to the connection.
        result.update(self.registry.context.negotiate(options))
        return result

    def _add_model(self, options: Dict[str, Any], model_options: Any) -> Dict[str, Any]:
        ttl_ms = _state_ttl(options)
        model = self.registry.add(options.get("ModelName"), options.get("ModelFile"),
                                  options.get("ClassName"), model_options, options.get("Batch"))
        self._set_ttl(model.name, ttl_ms)
        return _model_result(model)

    def _update_model(self, options: Dict[str, Any], model_options: Any) -> Dict[str, Any]:
        ttl_ms = _state_ttl(options)
        model = self.registry.update(options.get("ModelName"), options.get("ModelFile"),
                                     options.get("ClassName"), model_options, options.get("Batch"))
        self._set_ttl(model.name, ttl_ms)
        return _model_result(model)

    def _set_ttl(self, name: str, ttl_ms: Optional[int]) -> None:
        """The model's default state TTL (StateTtlMs): what a write that names no ttl gets."""
        defaults = self.registry.context.journal.ttl_ms
        if ttl_ms is None:
            defaults.pop(name, None)
        else:
            defaults[name] = ttl_ms

    def _remove_model(self, options: Dict[str, Any], _model_options: Any) -> Dict[str, Any]:
        model = self.registry.remove(options.get("ModelName"))
        self._set_ttl(model.name, None)
        return {"ModelName": model.name}

    def _init_model(self, options: Dict[str, Any], _model_options: Any) -> Dict[str, Any]:
        name = options.get("ModelName")
        if options.get("DataFile") is None:
            self.registry.get(name)
            raise RequestError("MissingOption", "DataFile is required")
        path = self.registry.init(name, options.get("DataFile"))
        return {"ModelName": name, "DataFile": path}

    def _server_status(self, _options: Dict[str, Any], _model_options: Any) -> Dict[str, Any]:
        return {
            "Uniq": self.uniq,
            "Pid": os.getpid(),
            "UptimeSeconds": round(time.monotonic() - self.started, 3),
            "ProtocolVersion": PROTOCOL_VERSION,
            "Python": platform.python_version(),
            "Models": self.registry.status(),
        }

    def _restore_state(self, options: Dict[str, Any], _model_options: Any) -> Dict[str, Any]:
        return self.registry.context.restore(options)

    def _stop_server(self, _options: Dict[str, Any], _model_options: Any) -> None:
        self.stop_requested = True
        return None


def _state_ttl(options: Dict[str, Any]) -> Optional[int]:
    """addModel's/updateModel's StateTtlMs: a positive integer, or absent (no default TTL)."""
    ttl = options.get("StateTtlMs")
    if ttl is not None and (type(ttl) is not int or ttl < 1):
        raise RequestError("BadOption", "StateTtlMs must be a positive integer (ms)")
    return ttl


def _no_frames(_payload: bytes) -> None:
    """Where a connectionless session's progress frames would go: nowhere."""


def _model_result(model: LoadedModel) -> Dict[str, Any]:
    """addModel's and updateModel's Result: what was loaded, and whether it runs batches."""
    return {"ModelName": model.name, "File": model.file, "Class": model.class_name,
            "Vectorised": model.execute_batch is not None}
