"""The models a server holds: loading, replacing, removing and initialising them by name."""
import difflib
import inspect
import logging
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional

from .context import ServerContext
from .legacy_model import adapt_execute, construct_legacy, is_legacy_class
from .model_failure import BadModelOutput, batch_shape_problem, model_failure
from .module_loader import load_module, module_name_for, unload_module
from .paths import ConfinedPaths
from .protocol import RequestError

_log = logging.getLogger("pystage.registry")


class LoadedModel:
    """One registered model. `execute` is the instance's bound method, looked up once, for the hot path.

    `execute_batch` is the vectorised method when the model has one and batches are allowed (`batch`),
    else None. A model with only execute_batch still gets an `execute`: one message as a batch of one."""

    __slots__ = ("name", "file", "class_name", "explicit_class", "options", "module_name",
                 "instance", "execute", "execute_batch", "has_execute", "batch", "executed", "errors")

    def __init__(self, name: str, file: str, class_name: str, explicit_class: Optional[str],
                 options: Dict[str, Any], module_name: str, instance: Any, batch: bool = True) -> None:
        self.name = name
        self.file = file
        self.class_name = class_name
        self.explicit_class = explicit_class
        self.options = options
        self.module_name = module_name
        self.instance = instance
        self.batch = batch
        vectorised = getattr(instance, "execute_batch", None)
        own = getattr(instance, "execute", None)
        self.has_execute = callable(own)
        self.execute: Callable[[Dict[str, Any]], Any] = own if callable(own) else single_via_batch(vectorised)
        self.execute_batch: Optional[Callable[[List[Dict[str, Any]]], Any]] = (
            vectorised if batch and callable(vectorised) else None)
        self.executed = 0
        self.errors = 0

    def status(self) -> Dict[str, Any]:
        return {"Name": self.name, "File": self.file, "Class": self.class_name,
                "Vectorised": self.execute_batch is not None, "Executed": self.executed, "Errors": self.errors}


def _has_execute(cls: type) -> bool:
    return callable(getattr(cls, "execute", None)) or callable(getattr(cls, "execute_batch", None))


def _pick_class(module: ModuleType, class_name: Optional[str], path: str) -> type:
    # Only classes defined by the file itself: an imported base class or helper is never the model.
    defined = [obj for obj in vars(module).values()
               if inspect.isclass(obj) and obj.__module__ == module.__name__]
    candidates = [cls for cls in defined if _has_execute(cls)]
    if class_name is not None:
        cls = getattr(module, class_name, None)
        if not inspect.isclass(cls):
            # A typo is the usual cause: name the classes that would do, nearest first.
            names = [c.__name__ for c in candidates]
            near = difflib.get_close_matches(class_name, names, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise RequestError("ClassNotFound", f"{path} defines no class {class_name!r} (classes with an execute or "
                                                f"execute_batch method: {', '.join(sorted(names)) or 'none'}){hint}")
        if not _has_execute(cls):
            raise RequestError("ClassNotFound", f"class {class_name!r} in {path} has no execute or execute_batch method")
        return cls
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        names = ", ".join(sorted(cls.__name__ for cls in defined)) or "none"
        raise RequestError("ClassNotFound",
                           f"{path} defines no class with an execute or execute_batch method (classes defined: {names})")
    names = ", ".join(sorted(cls.__name__ for cls in candidates))
    raise RequestError("AmbiguousClass",
                       f"{path} defines several classes with an execute or execute_batch method ({names}): pass ClassName")


def _instantiate(cls: type, options: Dict[str, Any]) -> Any:
    # A class that keeps object's constructor takes no options; calling it with one would only fail.
    if cls.__init__ is object.__init__:
        return cls()
    return cls(options)


class ModelRegistry:
    """Models by name. Every change builds the new model completely before it touches the registry."""

    def __init__(self, uniq: str, model_paths: ConfinedPaths, data_paths: ConfinedPaths,
                 context: Optional[ServerContext] = None) -> None:
        self.uniq = uniq
        self.context = context if context is not None else ServerContext(uniq)
        self.model_paths = model_paths
        self.data_paths = data_paths
        self.models: Dict[str, LoadedModel] = {}
        self._serial = 0

    def get(self, name: Any) -> LoadedModel:
        if name is None:
            raise RequestError("MissingOption", "ModelName is required")
        model = self.models.get(name) if isinstance(name, str) else None
        if model is None:
            raise RequestError("UnknownModel", f"no model named {name!r} is loaded")
        return model

    def add(self, name: Any, file: Any, class_name: Any, options: Any, batch: Any = None) -> LoadedModel:
        name = _model_name(name)
        if name in self.models:
            raise RequestError("ModelExists", f"a model named {name!r} is already loaded: use updateModel")
        model = self._build(name, file, class_name, options, _batch_option(batch, True))
        self.models[name] = model
        _log.info("model added", extra={"model": name, "file": model.file, "class": model.class_name,
                                        "vectorised": model.execute_batch is not None})
        return model

    def update(self, name: Any, file: Any, class_name: Any, options: Any, batch: Any = None) -> LoadedModel:
        old = self.get(name)
        # Whatever the request leaves out is kept from the model being replaced.
        if file is None:
            file = old.file
            if class_name is None:
                class_name = old.explicit_class
        if options is None:
            options = old.options
        model = self._build(old.name, file, class_name, options, _batch_option(batch, old.batch))
        self.models[old.name] = model
        unload_module(old.module_name)
        _log.info("model updated", extra={"model": old.name, "file": model.file, "class": model.class_name})
        return model

    def remove(self, name: Any) -> LoadedModel:
        model = self.get(name)
        del self.models[model.name]
        unload_module(model.module_name)
        self.context.journal.drop(model.name)
        _log.info("model removed", extra={"model": model.name})
        return model

    def init(self, name: Any, data_file: Any) -> str:
        model = self.get(name)
        path = self.data_paths.resolve(data_file, "DataFile")
        init = getattr(model.instance, "init", None)
        if not callable(init):
            raise RequestError("NoInitMethod", f"model {model.name!r} ({model.class_name}) has no init method")
        try:
            init(path)
        except (Exception, SystemExit) as exc:
            raise model_failure(exc) from exc
        _log.info("model initialised", extra={"model": model.name, "dataFile": path})
        return path

    def status(self) -> List[Dict[str, Any]]:
        return [model.status() for model in self.models.values()]

    def _build(self, name: str, file: Any, class_name: Any, options: Any, batch: bool) -> LoadedModel:
        if class_name is not None and (not isinstance(class_name, str) or not class_name):
            raise RequestError("BadOption", "ClassName must be a non-empty string")
        if options is None:
            options = {}
        elif not isinstance(options, dict):
            raise RequestError("BadOption", "ModelOptions must be a JSON object")
        if file is None:
            raise RequestError("MissingOption", "ModelFile is required")
        path = self.model_paths.resolve(file, "ModelFile")
        self._serial += 1
        module_name = module_name_for(self._serial, path)
        module = load_module(module_name, path)
        try:
            cls = _pick_class(module, class_name, path)
            try:
                legacy = is_legacy_class(cls)
                if legacy:
                    ctx = self.context
                    instance = construct_legacy(cls, options, ctx.host, ctx.port, ctx.partition,
                                                logging.getLogger(f"model.{name}"))
                else:
                    instance = _instantiate(cls, options)
                instance.context = self.context.for_model(name)
                loaded = LoadedModel(name, path, cls.__name__, class_name, options, module_name, instance, batch)
                if legacy:
                    loaded.execute = adapt_execute(instance.execute)
                return loaded
            except (Exception, SystemExit) as exc:
                raise model_failure(exc) from exc
        except BaseException:
            unload_module(module_name)
            raise


def _model_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise RequestError("MissingOption", "ModelName must be a non-empty string")
    return name


def _batch_option(value: Any, default: bool) -> bool:
    """addModel/updateModel's Batch: false makes a model with execute_batch run one message at a time."""
    if value is None:
        return default
    if type(value) is not bool:
        raise RequestError("BadOption", "Batch must be true or false")
    return value


def single_via_batch(execute_batch: Callable[[List[Dict[str, Any]]], Any]) -> Callable[[Dict[str, Any]], Any]:
    """`execute` for a model that only has execute_batch: the message as a batch of one."""
    def execute(msg: Dict[str, Any]) -> Any:
        outputs = execute_batch([msg])
        if type(outputs) is not list or len(outputs) != 1:
            raise BadModelOutput(batch_shape_problem(outputs, 1))
        return outputs[0]
    return execute
