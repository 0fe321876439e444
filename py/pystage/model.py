"""The optional base class of a model, and the context the server gives every model instance."""
import logging
from typing import Any, Dict, NamedTuple, Optional


class ModelContext(NamedTuple):
    """What a model knows about the server running it; set as `self.context` before the first call."""

    uniq: str
    model_name: str
    logger: logging.Logger


class Model:
    """Optional base class: keeps the options, and gives `context` a usable value even inside __init__.

    A subclass defines `execute(self, msg) -> dict | None`, or `execute_batch(self, msgs) -> list` (one
    dict or None per message), or both. The base deliberately has neither, so a class that forgot them
    is refused when the model is added, not at its first message.
    """

    # Replaced per instance by the server right after construction; this default only makes
    # `self.context.logger` safe to use inside a subclass's __init__.
    context: ModelContext = ModelContext("", "", logging.getLogger("model"))

    def __init__(self, options: Optional[Dict[str, Any]] = None) -> None:
        self.options: Dict[str, Any] = dict(options or {})

    def init(self, data_path: str) -> None:
        """Called by initModel with a local file (e.g. training output). Does nothing unless overridden."""

