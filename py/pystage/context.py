"""What the server shares with every model it runs: the partition's state, the channel to the host, and
where it runs (partition, host, port). One per server; hello configures it, the registry hands it out."""
import logging
from typing import Any, Dict, Optional

from .host_channel import DEFAULT_TIMEOUT_MS, HostChannel
from .model import ModelContext
from .partition_state import DEFAULT_MAX_STATE_BYTES, StateJournal
from .protocol import RequestError

# hello's CmdOptions that turn these on (see docs/protocol.md).
STATE_OPTION = "State"
HOST_OPTION = "Host"
PARTITION_OPTION = "Partition"


class ServerContext:
    """The server-wide half of every model's `self.context`."""

    def __init__(self, uniq: str, host: str = "127.0.0.1", port: str = "0") -> None:
        self.uniq = uniq
        self.host = host
        self.port = port
        self.partition = 0
        self.journal = StateJournal()
        self.channel = HostChannel(self._index)

    def _index(self) -> int:
        return len(self.journal.results)

    def for_model(self, name: str) -> ModelContext:
        return ModelContext(self.uniq, name, logging.getLogger(f"model.{name}"), self.journal, self.channel)

    def negotiate(self, options: Dict[str, Any]) -> Dict[str, Any]:
        """Apply hello's State / Host / Partition options; what the reply's Result gains."""
        state = options.get(STATE_OPTION)
        host = options.get(HOST_OPTION)
        partition = options.get(PARTITION_OPTION)
        if state is not None and (type(state) is not dict or not _positive(state.get("MaxBytes", 1))):
            raise RequestError("BadOption", "State must be an object {MaxBytes?: positive integer}")
        if host is not None and (type(host) is not dict or not _positive(host.get("TimeoutMs", 1))):
            raise RequestError("BadOption", "Host must be an object {TimeoutMs?: positive integer}")
        if partition is not None and (type(partition) is not int or partition < 0):
            raise RequestError("BadOption", "Partition must be a non-negative integer")
        added: Dict[str, Any] = {}
        journal, channel = self.journal, self.channel
        # Each successful hello sets these again, like Progress: one without them turns them off.
        journal.report = state is not None
        journal.max_bytes = state.get("MaxBytes", DEFAULT_MAX_STATE_BYTES) if state is not None else DEFAULT_MAX_STATE_BYTES
        channel.enabled = host is not None
        channel.default_timeout_ms = host.get("TimeoutMs", DEFAULT_TIMEOUT_MS) if host is not None else DEFAULT_TIMEOUT_MS
        if state is not None:
            added[STATE_OPTION] = {"MaxBytes": journal.max_bytes}
        if host is not None:
            added[HOST_OPTION] = {"TimeoutMs": channel.default_timeout_ms}
        if partition is not None:
            self.partition = partition
            added[PARTITION_OPTION] = partition
        return added

    def restore(self, options: Dict[str, Any]) -> Dict[str, Any]:
        """restoreState: the client's state replaces the server's (with Append: adds to it, a state sent in several frames)."""
        append = options.get("Append", False)
        if type(append) is not bool:
            raise RequestError("BadOption", "Append must be true or false")
        try:
            keys = self.journal.restore(options.get("States"), append)
        except TypeError as exc:
            raise RequestError("BadOption", str(exc)) from exc
        return {"Keys": keys}


def _positive(value: Optional[Any]) -> bool:
    return type(value) is int and value >= 1
