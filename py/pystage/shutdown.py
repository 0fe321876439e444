"""Stopping the server from a signal, even while a model is busy in Python code."""
import signal
from types import FrameType
from typing import Optional


class ShutdownRequested(BaseException):
    """Raised in the main thread by SIGTERM/SIGINT. A BaseException, so a model's `except Exception`
    does not swallow it; the server's own model guards re-raise it explicitly."""


def install_shutdown_signals() -> None:
    """SIGTERM and SIGINT raise ShutdownRequested once; later signals are ignored while shutting down."""

    def on_signal(signum: int, frame: Optional[FrameType]) -> None:
        ignore_shutdown_signals()
        raise ShutdownRequested(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def ignore_shutdown_signals() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
