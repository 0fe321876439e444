"""Profile every pystage server with cProfile, without changing how the stage starts them.

Put this directory on PYTHONPATH and set PYSTAGE_PROFILE_DIR; Python imports sitecustomize at
start-up, so each `server.py` process profiles itself and writes PYSTAGE_PROFILE_DIR/server.<pid>.prof
when it exits normally (stopServer). A wrapper script would not do: the stage resolves the real
interpreter through sys.executable and would bypass it.

    PYTHONPATH=bench/tools/profile PYSTAGE_PROFILE_DIR=/tmp/prof node dist/src/cli.js run ... < in > out
"""
import atexit
import cProfile
import os
import sys

_directory = os.environ.get("PYSTAGE_PROFILE_DIR")
if _directory and sys.argv and sys.argv[0].endswith("server.py"):
    _profiler = cProfile.Profile()
    _profiler.enable()

    def _dump() -> None:
        _profiler.disable()
        _profiler.dump_stats(os.path.join(_directory, f"server.{os.getpid()}.prof"))

    atexit.register(_dump)
