"""Load a model class from a file by path, the way the pystage server does, for the baselines."""
import argparse
import importlib.util
import sys
from typing import Any, Optional


def model_arguments(description: str) -> argparse.ArgumentParser:
    """The command line every baseline script takes: which model file and class, and where pystage lives."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model-file", required=True, help="the model's .py file")
    parser.add_argument("--class", dest="class_name", help="the model class (default: the file's only class with execute)")
    parser.add_argument("--py-root", required=True, help="directory holding the pystage package (models import it)")
    parser.add_argument("--init", dest="init_file", help="a data file passed to the model's init(path), like --init")
    return parser


def load_model(model_file: str, class_name: Optional[str], py_root: str, init_file: Optional[str] = None) -> Any:
    """Import `model_file` under its own module name, instantiate its model class with empty options, and
    call its init(init_file) when one is given."""
    model = _instantiate(model_file, class_name, py_root)
    if init_file is not None:
        model.init(init_file)
    return model


def _instantiate(model_file: str, class_name: Optional[str], py_root: str) -> Any:
    sys.path.insert(0, py_root)
    spec = importlib.util.spec_from_file_location("bench_model", model_file)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {model_file}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if class_name is not None:
        return getattr(module, class_name)({})
    # Classes defined in the file itself (not imported bases like pystage.Model) that have execute.
    candidates = [value for value in vars(module).values()
                  if isinstance(value, type) and value.__module__ == module.__name__ and callable(getattr(value, "execute", None))]
    if len(candidates) != 1:
        raise SystemExit(f"{model_file}: expected exactly one model class, found {[c.__name__ for c in candidates]}")
    return candidates[0]({})
