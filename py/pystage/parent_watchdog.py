"""Exit when the parent process dies, so a server is never left orphaned."""
import os
import threading
import time
from typing import Callable


class ParentWatchdog:
    """A daemon thread comparing os.getppid() with the parent seen at start.

    A thread, not a signal or the main loop: it keeps working while a model blocks the main thread in
    Python code (the interpreter switches threads every few milliseconds)."""

    def __init__(self, on_parent_death: Callable[[int], None], interval: float = 0.2) -> None:
        self.parent_pid = os.getppid()
        self._on_parent_death = on_parent_death
        self._interval = interval
        self._thread = threading.Thread(target=self._watch, name="pystage-parent-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _watch(self) -> None:
        while True:
            time.sleep(self._interval)
            if os.getppid() != self.parent_pid:
                self._on_parent_death(self.parent_pid)
                return
