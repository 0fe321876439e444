"""pystage's Python side: the model server and the model API (`from pystage import Model`)."""
from .host_channel import HostRequestError
from .model import Model, ModelContext
from .partition_state import StateFullError

__all__ = ["Model", "ModelContext", "HostRequestError", "StateFullError"]
