"""pystage's Python side: the model server and the model API (`from pystage import Model`)."""
from .model import Model, ModelContext

__all__ = ["Model", "ModelContext"]
