"""executeModel and executeBatch: the hot path, which builds reply payload bytes directly."""
import logging
from typing import Any, Dict, List, Optional, Tuple

from .model_failure import bad_output_error, model_error, model_failure, unencodable_output_error
from .model_registry import LoadedModel, ModelRegistry
from .paths import ConfinedPaths
from .protocol import (
    BAD_REQUEST, EXECUTE_BATCH, EXECUTE_MODEL, MODEL_ERROR, NO_OUTPUT, OK, RequestError, encode_json,
    encode_payload, error_object, error_reply, reply,
)
from .shutdown import ShutdownRequested
from .spool import Spool

_log = logging.getLogger("pystage.execution")


class ModelExecutor:
    """Runs messages through registered models. Results over the inline limit go to spool files."""

    def __init__(self, registry: ModelRegistry, spool: Spool, input_paths: ConfinedPaths, inline_limit: int) -> None:
        self.registry = registry
        # The registry's own dict (only ever mutated in place): one lookup per request.
        self._models = registry.models
        self.spool = spool
        self.input_paths = input_paths
        self.inline_limit = inline_limit
        # One object for every "no output" item and every non-object input of a batch: the list only
        # gets encoded, so sharing them is safe and saves building a dict per message.
        self._no_output_item: Dict[str, Any] = {"Code": NO_OUTPUT, "Result": None}
        self._not_an_object_item: Dict[str, Any] = {
            "Code": BAD_REQUEST, "Error": error_object("BadInput", "a message must be a JSON object", None)}

    def _model_named(self, options: Dict[str, Any]) -> LoadedModel:
        """The loaded model a request names; the registry raises the UnknownModel error."""
        name = options.get("ModelName")
        model = self._models.get(name) if type(name) is str else None
        return model if model is not None else self.registry.get(name)

    def execute_model(self, req_id: Optional[int], options: Dict[str, Any]) -> bytes:
        model = self._model_named(options)
        msg = options.get("InputDictionary")
        if msg is None:
            input_file = options.get("InputFile")
            if input_file is None:
                raise RequestError("MissingOption", "executeModel needs InputDictionary or InputFile")
            msg = self.spool.read_input(self.input_paths.resolve(input_file, "InputFile"))
        elif type(msg) is not dict:
            raise RequestError("BadInput", "InputDictionary must be a JSON object")
        model.executed += 1
        try:
            result = model.execute(msg)
        except ShutdownRequested:
            raise
        except BaseException as exc:
            model.errors += 1
            return self._model_failed(req_id, model.name, model_failure(exc))
        if result is None:
            return b'{"Cmd":"executeModel","Id":%s,"Code":1,"Result":null}' % _id_bytes(req_id)
        if not isinstance(result, dict):
            model.errors += 1
            error = bad_output_error(result)
            return self._model_failed(req_id, model.name, RequestError(error["Type"], error["Message"], MODEL_ERROR))
        try:
            data = encode_json(result).encode("utf-8")
        except Exception as exc:
            model.errors += 1
            error = unencodable_output_error(exc)
            return self._model_failed(req_id, model.name, RequestError(error["Type"], error["Message"], MODEL_ERROR))
        if len(data) > self.inline_limit:
            path = self._spill(data)
            return encode_payload(reply(EXECUTE_MODEL, req_id, OK, None, output_file=path))
        return b'{"Cmd":"executeModel","Id":%s,"Code":0,"Result":%s}' % (_id_bytes(req_id), data)

    def _model_failed(self, req_id: Optional[int], name: str, error: RequestError) -> bytes:
        _log.warning("model failed", extra={"cmd": EXECUTE_MODEL, "id": req_id, "model": name,
                                            "type": error.error_type, "error": error.message})
        return encode_payload(error_reply(EXECUTE_MODEL, req_id, error.code, error.error_type, error.message,
                                          error.traceback_text))

    def execute_batch(self, req_id: Optional[int], options: Dict[str, Any]) -> bytes:
        model = self._model_named(options)
        inputs = options.get("Inputs")
        if type(inputs) is not list:
            raise RequestError("MissingOption" if inputs is None else "BadOption", "Inputs must be a JSON array")
        execute = model.execute
        no_output = self._no_output_item
        items: List[Dict[str, Any]] = []
        append = items.append
        failed = 0
        executed = 0
        for msg in inputs:
            if type(msg) is not dict:
                append(self._not_an_object_item)
                continue
            executed += 1
            try:
                result = execute(msg)
            except ShutdownRequested:
                raise
            except BaseException as exc:
                append({"Code": MODEL_ERROR, "Error": model_error(exc)})
                failed += 1
                continue
            if result is None:
                append(no_output)
            elif isinstance(result, dict):
                append({"Code": OK, "Result": result})
            else:
                append({"Code": MODEL_ERROR, "Error": bad_output_error(result)})
                failed += 1
        model.executed += executed
        try:
            data: Optional[bytes] = encode_json(items).encode("utf-8")
        except Exception:
            data = None  # some result is not JSON: found and reported item by item below
        # Each item's result is part of the whole, so a whole within the limit needs no per-item check.
        if data is None or len(data) > self.inline_limit:
            data, failed = self._encode_items(items, failed)
        model.errors += failed
        if failed or len(items) != executed:
            first = next(item["Error"] for item in items if item["Code"] < 0)
            _log.warning("batch items failed", extra={
                "cmd": EXECUTE_BATCH, "id": req_id, "model": model.name, "failed": len(items) - executed + failed,
                "items": len(items), "type": first["Type"], "error": first["Message"]})
        return b'{"Cmd":"executeBatch","Id":%s,"Code":0,"Result":%s}' % (_id_bytes(req_id), data)

    def _encode_items(self, items: List[Dict[str, Any]], failed: int) -> Tuple[bytes, int]:
        """Encode items one by one: results over the inline limit go to files, unencodable ones fail."""
        parts: List[bytes] = []
        limit = self.inline_limit
        for index, item in enumerate(items):
            if item["Code"] != OK:
                parts.append(encode_payload(item))
                continue
            try:
                data = encode_json(item["Result"]).encode("utf-8")
            except Exception as exc:
                items[index] = {"Code": MODEL_ERROR, "Error": unencodable_output_error(exc)}
                parts.append(encode_payload(items[index]))
                failed += 1
                continue
            if len(data) > limit:
                try:
                    items[index] = {"Code": OK, "Result": None, "OutputFile": self._spill(data)}
                except RequestError as exc:
                    items[index] = {"Code": exc.code, "Error": exc.error()}
                    failed += 1
                parts.append(encode_payload(items[index]))
            else:
                parts.append(b'{"Code":0,"Result":%s}' % data)
        return b"[" + b",".join(parts) + b"]", failed

    def _spill(self, data: bytes) -> str:
        try:
            return self.spool.write_output(data)
        except OSError as exc:
            raise RequestError("SpoolWriteError", f"cannot write a result to the spool dir: {exc}",
                               MODEL_ERROR) from exc


def _id_bytes(req_id: Optional[int]) -> bytes:
    return b"null" if req_id is None else b"%d" % req_id
