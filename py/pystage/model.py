"""The optional base class of a model, and the context the server gives every model instance."""
import logging
from typing import Any, Callable, Dict, Optional

from .host_channel import HostChannel, SharedCache, make_request
from .partition_state import PartitionState, StateJournal


class ModelContext:
    """What a model can reach beyond its message; set as `self.context` before the first call.

    `state`: the partition's state for this model (dict-like, JSON values, survives server crashes);
    `request(name, payload=None, timeout=None)`: ask a handler on the host; `cache`: the cache shared by
    every partition and the host; `uniq`, `model_name` and `logger` describe where it runs."""

    __slots__ = ("uniq", "model_name", "logger", "state", "cache", "request")

    def __init__(self, uniq: str, model_name: str, logger: logging.Logger,
                 journal: Optional[StateJournal] = None, channel: Optional[HostChannel] = None) -> None:
        self.uniq = uniq
        self.model_name = model_name
        self.logger = logger
        journal = journal if journal is not None else StateJournal()
        channel = channel if channel is not None else HostChannel(lambda: 0)
        self.state = PartitionState(journal, model_name)
        self.cache = SharedCache(channel)
        self.request: Callable[..., Any] = make_request(channel)


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
