"""The spool directory: where big inputs are read from and big outputs are written to."""
import os
import shutil
import tempfile
from typing import Any, Dict, Optional

from .protocol import RequestError, decode_json


class Spool:
    """A directory for InputFile/OutputFile; removed at exit only if the server created it."""

    def __init__(self, directory: Optional[str]) -> None:
        if directory is None:
            self.path = os.path.realpath(tempfile.mkdtemp(prefix="pystage-spool-"))
            self.owned = True
        else:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            self.path = os.path.realpath(directory)
            self.owned = False

    def write_output(self, data: bytes) -> str:
        """Write one result to a new file (mode 0600) and return its path; the client deletes it.

        Named after this process, so that when a server dies before its reply leaves, the client can
        remove that server's files at once."""
        fd, path = tempfile.mkstemp(prefix=f"out-{os.getpid()}-", suffix=".json", dir=self.path)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except BaseException:
            os.close(fd)
            os.unlink(path)
            raise
        os.close(fd)
        return path

    @staticmethod
    def read_input(path: str) -> Dict[str, Any]:
        """The JSON object in an InputFile (already confined by the caller)."""
        try:
            with open(path, "rb") as handle:
                text = handle.read().decode("utf-8")
        except FileNotFoundError as exc:
            raise RequestError("InputFileNotFound", f"InputFile {path!r} does not exist") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise RequestError("BadInput", f"InputFile {path!r} cannot be read: {exc}") from exc
        try:
            message = decode_json(text)
        except ValueError as exc:
            raise RequestError("BadInput", f"InputFile {path!r} is not valid JSON: {exc}") from exc
        if not isinstance(message, dict):
            raise RequestError("BadInput", f"InputFile {path!r} does not hold a JSON object")
        return message

    def remove(self) -> None:
        if self.owned:
            shutil.rmtree(self.path, ignore_errors=True)
