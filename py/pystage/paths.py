"""Path confinement: a file named in a request must resolve, symlinks included, inside an allowed root."""
import os
from typing import Sequence

from .protocol import RequestError

PATH_ERROR = "PathError"


class ConfinedPaths:
    """Resolves request paths against `base` and accepts them only inside one of `roots`."""

    def __init__(self, base: str, roots: Sequence[str]) -> None:
        self.base = os.path.realpath(base)
        # Real paths, so a root reached through a symlink (e.g. /tmp on macOS) still matches.
        self.roots = tuple(dict.fromkeys(os.path.realpath(root) for root in roots))

    def resolve(self, path: object, option: str) -> str:
        """The real path of `path`, or RequestError(PathError) when it is not a string or leads outside."""
        if not isinstance(path, str) or not path:
            raise RequestError(PATH_ERROR, f"{option} must be a non-empty string")
        if "\0" in path:
            raise RequestError(PATH_ERROR, f"{option} contains a NUL byte")
        real = os.path.realpath(os.path.join(self.base, path))
        for root in self.roots:
            if real == root or real.startswith(root + os.sep) or (root == os.sep and real.startswith(os.sep)):
                return real
        allowed = " or ".join(self.roots)
        raise RequestError(PATH_ERROR, f"{option} {path!r} resolves to {real!r}, outside {allowed}: "
                           "files must lie in the stage's python path or the folders of the files it started with")
