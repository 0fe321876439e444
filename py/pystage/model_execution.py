"""executeModel and executeBatch: the hot path, which builds reply payload bytes directly."""
import logging
from time import monotonic
from typing import Any, Callable, Dict, List, Optional, Tuple

from .batch_lines import BadMessage
from .model_failure import bad_output, model_failure, unencodable_output
from .model_registry import LoadedModel, ModelRegistry
from .output_encoding import OutputEncoder
from .paths import ConfinedPaths
from .protocol import (
    EXECUTE_BATCH, EXECUTE_MODEL, MODEL_ERROR, NO_OUTPUT, RequestError, batch_reply, error_payload, model_reply,
)
from .placed_outputs import OutputPlacer, PlacedOutputs
from .progress import Progress
from .shutdown import ShutdownRequested
from .output_size import output_bounds, output_floor
from .spool import Spool
from .vectorised_batch import ItemError, run_vectorised
from .reply_arrays import _ITEM_COSTS, ReplyArrays

_log = logging.getLogger("pystage.execution")



class ModelExecutor(ReplyArrays):
    """Runs messages through registered models. Results over the inline limit go to spool files, and so do
    results that would make a reply larger than its budget: half the largest frame the client accepts
    (the other half leaves room for errors, file paths and the reply's own fields)."""

    def __init__(self, registry: ModelRegistry, spool: Spool, input_paths: ConfinedPaths, inline_limit: int,
                 max_frame_bytes: int, nan_as_null: bool = False, max_output_bytes: int = 64 * 1024 * 1024) -> None:
        self.registry = registry
        self.max_output_bytes = max_output_bytes
        # One output's JSON bytes: plain outputs in one C call, numpy and the rest of the type table converted.
        self._encode_output = OutputEncoder(nan_as_null).encode
        # The registry's own dict (only ever mutated in place): one lookup per request.
        self._models = registry.models
        self.spool = spool
        self.input_paths = input_paths
        self.inline_limit = inline_limit
        self.max_frame_bytes = max_frame_bytes
        self.reply_budget = max_frame_bytes // 2
        # Results whose whole JSON is within this need no per-item look: none is over the inline limit,
        # and together they are within the budget.
        self._whole_limit = min(inline_limit, self.reply_budget)
        # One object for every "no output" item and every non-object input of a batch: they only get
        # encoded, so sharing them is safe and saves building a dict per message.
        self._no_output_item: Dict[str, Any] = {"Code": NO_OUTPUT, "Result": None}
        self._not_an_object_error = RequestError("BadInput", "a message must be a JSON object")
        self._placer = OutputPlacer(self._encode_output, spool, inline_limit,
                                    lambda size: self._too_large("", size, "") if size > self.max_output_bytes else None)
        # The partition's state: a message's writes commit when it succeeds (see partition_state.py).
        self._journal = registry.context.journal

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
        journal = self._journal
        journal.start(model.name, _request_now(options))
        journal.begin(model.name, [])
        try:
            try:
                result = model.execute(msg)
            except ShutdownRequested:
                raise
            except BaseException as exc:
                model.errors += 1
                return self._model_failed(req_id, model.name, model_failure(exc))
            if result is not None and not isinstance(result, dict):
                model.errors += 1
                return self._model_failed(req_id, model.name, bad_output(result))
            try:
                data = None if result is None else self._encode_output(self._fitting(result, model.name))
                if data is not None and len(data) > self.max_output_bytes:
                    raise self._too_large(model.name, len(data), "")
            except RequestError as exc:
                model.errors += 1
                return self._model_failed(req_id, model.name, exc)
            except Exception as exc:
                model.errors += 1
                return self._model_failed(req_id, model.name, unencodable_output(exc))
            # Placed (spilled) before the writes commit: a spool file that cannot be written fails the message.
            try:
                path = self._placer.spill(data) if data is not None and len(data) > self._whole_limit else None
            except RequestError as exc:
                model.errors += 1
                return self._model_failed(req_id, model.name, exc)
            if journal.uncommitted:
                journal.commit()
            reply = model_reply(req_id, data, journal.reply_state(), path)
            self._check_fits(reply)
            return reply
        except BaseException:
            journal.abort()
            raise
        finally:
            journal.finish()

    def _model_failed(self, req_id: Optional[int], name: str, error: RequestError) -> bytes:
        # An error reply carries no State: the request changed nothing, not even the expiries it found due.
        self._journal.abort()
        # The failure is its message's error record; logged only when asked (debug).
        _log.debug("model failed", extra={"cmd": EXECUTE_MODEL, "id": req_id, "model": name,
                                          "type": error.error_type, "error": error.message})
        return error_payload(EXECUTE_MODEL, req_id, error)

    def execute_batch(self, req_id: Optional[int], options: Dict[str, Any],
                      progress: Optional[Progress] = None) -> bytes:
        model = self._model_named(options)
        inputs = options.get("Inputs")
        if type(inputs) is not list:
            raise RequestError("MissingOption" if inputs is None else "BadOption", "Inputs must be a JSON array")
        lean = options.get("Lean", False)
        if type(lean) is not bool:
            raise RequestError("BadOption", "Lean must be true or false")
        journal = self._journal
        journal.start(model.name, _request_now(options))
        placed = PlacedOutputs(self.reply_budget - _ITEM_COSTS[0] * len(inputs))
        try:
            results, errors = self._run_batch(model, req_id, inputs, progress, placed)
            state = journal.reply_state()
            if lean:
                errors_data, files_data, results_data = self._lean_arrays(results, errors, placed)
                reply = batch_reply(req_id, results_data, state, (errors_data, files_data))
            else:
                reply = batch_reply(req_id, self._items_array(results, errors, placed), state)
            self._check_fits(reply)
        except BaseException:
            # No reply can say what the request did: it did nothing (its spilled outputs stay for the sweep).
            journal.abort()
            raise
        finally:
            journal.finish()
        if errors:
            model.errors += sum(1 for _, error in errors if error.code == MODEL_ERROR)
            first = errors[0][1]
            # Each failure is already its message's error record: the log repeats it only when asked (debug).
            _log.debug("batch items failed", extra={
                "cmd": EXECUTE_BATCH, "id": req_id, "model": model.name, "failed": len(errors),
                "items": len(results), "type": first.error_type, "error": first.message})
        return reply

    def _run_batch(self, model: LoadedModel, req_id: Optional[int], inputs: List[Any],
                   progress: Optional[Progress], placed: PlacedOutputs) -> Tuple[List[Optional[Dict[str, Any]]], List[ItemError]]:
        """Run every message: each one's dict (None for no output or a failure), and the failures in index order."""
        journal = self._journal
        if model.execute_batch is not None:
            # One call for the whole batch is one unit for the state: its writes stay unless every message
            # failed (it raised, returned a wrongly shaped result, or no output could be encoded and placed);
            # then the batch may run one at a time.
            journal.begin(model.name, [])
            outcome = run_vectorised(model, inputs, self._not_an_object_error)
            if journal.uncommitted:
                if outcome is not None and self._placer.place_all(outcome, placed):
                    journal.commit()
                else:
                    journal.rollback()
            if outcome is not None:
                return outcome
            # execute_batch raised and the model has execute: one at a time, so only the culprits fail.
        execute = model.execute
        results: List[Optional[Dict[str, Any]]] = []
        append = results.append
        journal.begin(model.name, results)
        # Tested after every message: empty unless the model wrote to its state, so a model that does
        # not use the state pays one truth test per message.
        uncommitted = journal.uncommitted
        errors: List[ItemError] = []
        executed = 0
        max_output = self.max_output_bytes
        # Progress frames only when the connection's hello asked for them; the request's start counts as
        # the last frame sent (a reply can only have left before it).
        send_progress: Optional[Callable[[Optional[int], int], None]] = None
        interval = 0.0
        if progress is not None and progress.interval is not None:
            send_progress, interval = progress.send, progress.interval
        deadline = monotonic() + interval
        for msg in inputs:
            if type(msg) is dict:
                executed += 1
                try:
                    result = execute(msg)
                except ShutdownRequested:
                    raise
                except BaseException as exc:
                    errors.append((len(results), model_failure(exc)))
                    result = None
                    if uncommitted:
                        journal.rollback()
                else:
                    if result is not None and not isinstance(result, dict):
                        errors.append((len(results), bad_output(result)))
                        result = None
                    elif result is not None and output_floor(result, max_output) > max_output:
                        # Surely too large: refused before any time or memory goes into encoding it.
                        errors.append((len(results), self._too_large(model.name, output_floor(result, max_output), "at least ")))
                        result = None
                    if uncommitted:
                        result = self._commit_with(result, len(results), errors, placed)
            else:
                errors.append((len(results), msg.error if type(msg) is BadMessage else self._not_an_object_error))
                result = None
            append(result)
            if send_progress is not None and monotonic() >= deadline:
                send_progress(req_id, len(results))
                deadline = monotonic() + interval
        model.executed += executed
        return results, errors

    def _commit_with(self, result: Optional[Dict[str, Any]], index: int, errors: List[ItemError],
                     placed: PlacedOutputs) -> Optional[Dict[str, Any]]:
        """Commit a message's state writes once nothing can fail for it any more: its output is encoded and
        placed now (inline room taken, or written to its spool file), not when the reply is built."""
        journal = self._journal
        if (errors and errors[-1][0] == index) or (result is not None and not self._placer.place(result, index, errors, placed)):
            journal.rollback()
            return None
        journal.commit()
        return result

    def _check_fits(self, reply: bytes) -> None:
        """A reply over the client's frame limit would break the connection (and be resent forever): the
        request fails as a whole instead, and the caller takes its state changes back."""
        if len(reply) > self.max_frame_bytes:
            raise RequestError("ReplyTooLarge", f"the reply would take {len(reply)} bytes, over the frame limit of "
                               f"{self.max_frame_bytes}: its state changes are too many for one request", MODEL_ERROR)

    def _fitting(self, result: Dict[str, Any], name: str) -> Dict[str, Any]:
        """`result`, unless it surely encodes to more than max_output_bytes (then OutputTooLarge, before
        any time goes into encoding it: a 2 GB string fails at once)."""
        floor = output_bounds(result, self.max_output_bytes)[0]
        if floor > self.max_output_bytes:
            raise self._too_large(name, floor, "at least ")
        return result

    def _too_large(self, name: str, size: int, qualifier: str) -> RequestError:
        model = f"model {name!r} returned" if name else "the model returned"
        return RequestError("OutputTooLarge", f"{model} an output of {qualifier}{size} bytes as JSON, over the limit of "
                            f"{self.max_output_bytes} bytes (--max-output-bytes, maxOutputBytes): return less, or raise "
                            f"the limit", MODEL_ERROR)

def _request_now(options: Dict[str, Any]) -> Optional[int]:
    """The request's Now (the host's time of its batch, ms since the epoch), or None when it sent none."""
    now = options.get("Now")
    if now is None:
        return None
    if type(now) is not int or now < 0:
        raise RequestError("BadOption", "Now must be a non-negative integer (ms since the epoch)")
    return now

