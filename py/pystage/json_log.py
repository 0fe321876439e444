"""Logging as one JSON object per line on stderr, and capture of stray writes to stdout/stderr into that log."""
import io
import json
import logging
import sys
import threading
import time
from typing import Any, Dict, Optional, TextIO

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged as a field.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

# Level names of both Python and pino, since the runtime passes its own (pino) level through.
LOG_LEVELS: Dict[str, int] = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
    "critical": logging.CRITICAL,
    "silent": logging.CRITICAL + 10,
}

STDOUT_LOGGER = "model.stdout"
STDERR_LOGGER = "model.stderr"


class JsonLogFormatter(logging.Formatter):
    """Formats a record as one JSON line: level, time, uniq, logger, msg, then any extra fields."""

    def __init__(self, uniq: str) -> None:
        super().__init__()
        self.uniq = uniq

    def format(self, record: logging.LogRecord) -> str:
        entry: Dict[str, Any] = {
            "level": record.levelname.lower(),
            "time": _iso_time(record.created),
            "uniq": self.uniq,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        try:
            return json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=repr)
        except ValueError:  # a circular extra; never lose the line itself
            return json.dumps({k: entry[k] for k in ("level", "time", "uniq", "logger", "msg")},
                              ensure_ascii=False, separators=(",", ":"))


def _iso_time(created: float) -> str:
    seconds = int(created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + ".%03dZ" % int((created - seconds) * 1000)


def configure_logging(formatter: JsonLogFormatter, level: int, stream: TextIO) -> logging.Handler:
    """Route every logger to one JSON handler on `stream`, replacing any handler set up before."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


class LogLineStream(io.TextIOBase):
    """A text stream whose complete lines become log records, so print() in a model never reaches stdout."""

    # A line with no newline in sight is logged in pieces rather than held without bound.
    MAX_LINE = 64 * 1024

    def __init__(self, logger_name: str, level: int, fallback: TextIO) -> None:
        super().__init__()
        self._logger = logging.getLogger(logger_name)
        self._level = level
        self._fallback = fallback
        self._partial = ""
        self._lock = threading.RLock()
        self._writing = False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            if self._writing:
                # Re-entered from inside logging (e.g. a handler reporting its own error to sys.stderr):
                # write through, or we would recurse forever.
                self._fallback.write(text)
                return len(text)
            data = self._partial + text
            lines = data.split("\n")
            self._partial = lines.pop()
            if len(self._partial) > self.MAX_LINE:
                lines.append(self._partial)
                self._partial = ""
            for line in lines:
                self._emit(line)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._partial and not self._writing:
                line, self._partial = self._partial, ""
                self._emit(line)

    def _emit(self, line: str) -> None:
        self._writing = True
        try:
            self._logger.log(self._level, line.rstrip("\r"))
        finally:
            self._writing = False


def capture_std_streams(stdout_fallback: Optional[TextIO] = None) -> None:
    """Replace sys.stdout and sys.stderr with streams that log each line (stdout at info, stderr at warning)."""
    real_stderr = sys.__stderr__ if sys.__stderr__ is not None else sys.stderr
    sys.stdout = LogLineStream(STDOUT_LOGGER, logging.INFO, stdout_fallback or real_stderr)
    sys.stderr = LogLineStream(STDERR_LOGGER, logging.WARNING, real_stderr)
