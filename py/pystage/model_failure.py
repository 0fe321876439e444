"""Turning an exception raised by a model's own code into a Code -2 error."""
import os
import traceback
from types import TracebackType
from typing import Any, Optional

from .protocol import MODEL_ERROR, RequestError

BAD_MODEL_OUTPUT = "BadModelOutput"


_SERVER_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _is_server_frame(tb: TracebackType) -> bool:
    filename = tb.tb_frame.f_code.co_filename
    return filename.startswith(_SERVER_DIR) or filename.startswith("<frozen importlib")


def _model_traceback(exc: BaseException) -> str:
    # The leading frames are the server's own calls into the model: the model's author needs the rest.
    tb: Optional[TracebackType] = exc.__traceback__
    while tb is not None and _is_server_frame(tb):
        tb = tb.tb_next
    # Nothing left (a SyntaxError raised by the import machinery): the file and line of the error itself,
    # which format_exception writes for a SyntaxError, are all there is to say.
    return "".join(traceback.format_exception(type(exc), exc, tb))


def model_failure(exc: BaseException) -> RequestError:
    """A Code -2 error carrying the exception's own class name and message, and the model's traceback."""
    return RequestError(type(exc).__name__, str(exc), MODEL_ERROR, _model_traceback(exc))


def bad_output(value: Any, method: str = "execute()") -> RequestError:
    """The -2 error of a model method that returned something other than a dict or None."""
    return RequestError(BAD_MODEL_OUTPUT, f"{method} must return a dict or None, not {type(value).__name__}",
                        MODEL_ERROR)


def unencodable_output(exc: Exception) -> RequestError:
    """The -2 error of a model output that does not encode as JSON (`exc` says why)."""
    return RequestError(BAD_MODEL_OUTPUT, f"the model returned a dict that is not valid JSON: {exc}", MODEL_ERROR)


class BadModelOutput(Exception):
    """Raised for a vectorised model's wrongly shaped result; its class name is the error's Type."""


def batch_shape_problem(outputs: Any, expected: int) -> str:
    """What is wrong with execute_batch's return value, given that it is not a list of `expected` items."""
    if type(outputs) is not list:
        return f"execute_batch() must return a list (one dict or None per message), not {type(outputs).__name__}"
    return f"execute_batch() returned {len(outputs)} items for {expected} messages: it must return one per message"


def batch_shape_error(outputs: Any, expected: int) -> RequestError:
    """The -2 error of every message of a batch whose execute_batch result has the wrong shape."""
    return RequestError(BAD_MODEL_OUTPUT, batch_shape_problem(outputs, expected), MODEL_ERROR)
