"""The server's process-level steps: announcing readiness on stdout, removing its files, and leaving
at once when the parent dies."""

import logging
import os
import signal
from typing import Callable, Optional

from .json_log import JsonLogFormatter, capture_std_streams
from .listener import ListenAddress
from .protocol import encode_json
from .spool import Spool


def announce_ready(address: ListenAddress, uniq: str) -> None:
    """Write the ready line on stdout, then hand stdout over to the log."""
    line = encode_json({"event": "ready", "host": address.host, "port": address.port,
                        "unixSocket": address.unix_socket, "pid": os.getpid(), "uniq": uniq})
    # Straight to fd 1 as UTF-8, whatever sys.stdout's buffering and encoding are.
    data = memoryview((line + "\n").encode("utf-8"))
    while data:
        data = data[os.write(1, data):]
    # From here on stdout belongs to nobody: fd 1 becomes stderr (for anything writing to the fd,
    # e.g. a model's subprocess) and sys.stdout/sys.stderr turn lines into log records.
    os.dup2(2, 1)
    capture_std_streams()


def remove_files(address: Optional[ListenAddress], spool: Optional[Spool]) -> None:
    """Remove the Unix socket (if any) and the spool's files."""
    if address is not None and address.unix_socket is not None:
        try:
            os.unlink(address.unix_socket)
        except OSError:
            pass
    if spool is not None:
        spool.remove()


def exit_on_parent_death(parent_pid: int, log_fd: int, formatter: JsonLogFormatter, cleanup: Callable[[], None]) -> None:
    """Log, clean up and leave the process (and its group) at once; never returns."""
    # Runs in the watchdog thread while the main thread may be stuck in a model: write the log line
    # straight to the log fd (no logging locks), clean up files, and leave without unwinding anything.
    record = logging.LogRecord("pystage.server", logging.WARNING, __file__, 0,
                               "parent process died: exiting", None, None)
    record.parentPid = parent_pid
    try:
        os.write(log_fd, (formatter.format(record) + "\n").encode("utf-8"))
    except OSError:
        pass
    cleanup()
    # Nobody is left to kill what the models started: take the whole process group down, this process
    # last (SIGKILL to the group includes it). Only when the server leads its group, as the stage starts
    # it; run by hand from a shell, the group may hold other processes that are not ours to kill.
    if os.getpgrp() == os.getpid():
        try:
            os.killpg(os.getpid(), signal.SIGKILL)
        except OSError:
            pass
    os._exit(0)
