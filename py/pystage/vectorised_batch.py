"""executeBatch for a vectorised model: one execute_batch call for all of a batch's messages.

The model gets the batch's messages (dicts, in order; inputs that are not messages are failed apart and
left out) and returns a list with one dict or None per message. A wrongly shaped result fails every
message with BadModelOutput. When execute_batch raises, a model that also has execute runs the batch one
message at a time instead, so only the messages that fail alone become errors; a model without execute
fails every message with the exception.
"""
import logging
from typing import Any, Dict, List, Optional, Tuple

from .batch_lines import BadMessage
from .model_failure import bad_output, batch_shape_error, model_failure
from .model_registry import LoadedModel
from .protocol import RequestError
from .shutdown import ShutdownRequested

_log = logging.getLogger("pystage.execution")

# A failed batch item: its index and its error (whose code is the item's Code).
ItemError = Tuple[int, RequestError]
# The outcome of a vectorised run; None when execute_batch raised and the batch must run one at a time.
Outcome = Optional[Tuple[List[Optional[Dict[str, Any]]], List[ItemError]]]


def run_vectorised(model: LoadedModel, inputs: List[Any], not_an_object: RequestError) -> Outcome:
    """Every message through one execute_batch call: each one's dict (None for no output or a failure) and
    the failures in index order; None when the batch is to be re-run through execute, one at a time."""
    execute_batch = model.execute_batch
    assert execute_batch is not None
    results: List[Optional[Dict[str, Any]]] = [None] * len(inputs)
    errors: List[ItemError] = []
    msgs: List[Dict[str, Any]] = []
    positions: List[int] = []
    for index, msg in enumerate(inputs):
        if type(msg) is dict:
            msgs.append(msg)
            positions.append(index)
        else:
            errors.append((index, msg.error if type(msg) is BadMessage else not_an_object))
    if not msgs:
        return results, errors
    try:
        outputs = execute_batch(msgs)
    except ShutdownRequested:
        raise
    except BaseException as exc:
        if model.has_execute:
            _log.info("execute_batch raised: running the batch one message at a time", extra={
                "model": model.name, "items": len(msgs), "type": type(exc).__name__, "error": str(exc)})
            return None
        failure = model_failure(exc)
        errors.extend((index, failure) for index in positions)
    else:
        if type(outputs) is not list or len(outputs) != len(msgs):
            failure = batch_shape_error(outputs, len(msgs))
            errors.extend((index, failure) for index in positions)
        else:
            for index, output in zip(positions, outputs):
                if isinstance(output, dict):
                    results[index] = output
                elif output is not None:
                    errors.append((index, bad_output(output, "each item of execute_batch()")))
    model.executed += len(msgs)
    if len(errors) > 1:
        errors.sort(key=lambda error: error[0])
    return results, errors
