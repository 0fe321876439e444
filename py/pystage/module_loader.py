"""Loading a model file as a module of its own, under a name no other loaded file can take."""
import importlib.machinery
import importlib.util
import os
import re
import sys
from types import CodeType, ModuleType

from .legacy_model import expand_leading_tabs
from .model_failure import model_failure
from .protocol import RequestError


class _FreshSourceLoader(importlib.machinery.SourceFileLoader):
    """Always compiles from the source file: a cached .pyc written within the same second as an edit
    of the same size would otherwise be taken for current, and updateModel must see the file as it is now.
    Nothing is written next to the user's model either."""

    def get_code(self, fullname: str) -> CodeType:
        source = self.get_data(self.path)
        try:
            return self.source_to_code(source, self.path)
        except TabError:
            # Written for Python 2, which read a tab as indentation to the next multiple of 8.
            return self.source_to_code(expand_leading_tabs(source), self.path)


def module_name_for(serial: int, path: str) -> str:
    stem = re.sub(r"\W", "_", path.rsplit("/", 1)[-1].rsplit(".", 1)[0]) or "model"
    return f"pystage_model_{serial}_{stem}"


def load_module(module_name: str, path: str) -> ModuleType:
    """Execute the file at `path` as module `module_name`, registered in sys.modules only if it loads.

    An exception raised by the module's own top-level code is a model failure (Code -2)."""
    if not os.path.isfile(path):
        raise RequestError("ModelFileNotFound", f"model file {path!r} does not exist or is not a file")
    loader = _FreshSourceLoader(module_name, path)
    spec = importlib.util.spec_from_file_location(module_name, path, loader=loader)
    if spec is None:
        raise RequestError("BadModelFile", f"cannot load {path!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered before running it, as import does: dataclasses and pickle look classes up there.
    sys.modules[module_name] = module
    try:
        loader.exec_module(module)
    # SystemExit too: a model file that calls exit() at import fails its addModel, not the server.
    # Not BaseException: a shutdown signal (ShutdownRequested) must still stop the server.
    except (Exception, SystemExit) as exc:
        sys.modules.pop(module_name, None)
        raise model_failure(exc) from exc
    return module


def unload_module(module_name: str) -> None:
    sys.modules.pop(module_name, None)
