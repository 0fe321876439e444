"""Process and connection lifecycle: ready line, stdout hygiene, stop, signals, parent death,
reconnect, connection replacement, Unix sockets."""
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Any, Dict, List, Tuple

from tests import model_sources as src
from tests.server_fixture import SERVER_SCRIPT, Client, ServerProcess, ServerTestCase, pid_alive, wait_until

TOKEN = "lifecycle-token"


class ProcessLifecycleTest(ServerTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.write_model("behaviours.py", src.BEHAVIOURS)

    def spool_dir_of(self, server: ServerProcess) -> str:
        return server.wait_for_log(lambda r: r.get("msg") == "server listening")["spoolDir"]

    def test_ready_line_then_nothing_on_stdout_even_when_models_print(self) -> None:
        server = self.start_server(token=TOKEN)
        self.assertEqual(set(server.ready), {"event", "host", "port", "unixSocket", "pid", "uniq"})
        self.assertEqual(server.ready["event"], "ready")
        self.assertEqual(server.ready["host"], "127.0.0.1")
        self.assertIsInstance(server.ready["port"], int)
        self.assertIsNone(server.ready["unixSocket"])
        self.assertEqual(server.ready["pid"], server.pid)
        client = self.connect(server, token=TOKEN)
        self.assertCode(client.request("addModel", {"ModelName": "b", "ModelFile": "behaviours.py"}), 0)
        self.assertEqual(client.request("executeModel", {"ModelName": "b", "InputDictionary": {"do": "print", "n": 5}})
                         ["Result"], {"printed": True})
        self.assertCode(client.request("executeModel", {"ModelName": "b", "InputDictionary": {"do": "context", "seq": 9}}), 0)
        self.assertCode(client.request("stopServer"), 0)
        self.assertEqual(server.wait_exit(), 0)
        self.assertEqual(server.rest_of_stdout(), b"", "only the ready line ever goes to stdout")
        records = server.logs()
        self.assertEqual([r for r in records if "raw" in r and r["raw"] != "raw fd 1 write from a model"], [],
                         "every stderr line is a JSON object (bar what a model writes to fd 1 itself)")
        by_logger: Dict[str, List[Dict[str, Any]]] = {}
        for record in records:
            by_logger.setdefault(record.get("logger", ""), []).append(record)
        printed = [r["msg"] for r in by_logger["model.stdout"]]
        self.assertEqual(printed, ["printed by a model 5", "no newline yet ... now"])
        self.assertEqual([r["level"] for r in by_logger["model.stdout"]], ["info", "info"])
        self.assertEqual([r["msg"] for r in by_logger["model.stderr"]], ["stderr line from a model"])
        context_log = by_logger["model.b"][0]
        self.assertEqual((context_log["msg"], context_log["seq"], context_log["uniq"]),
                         ("context logger works", 9, f"test.{server.port}"))
        for record in records:
            if "raw" not in record:
                self.assertEqual(record["uniq"], f"test.{server.port}")
                self.assertIn(record["level"], ("debug", "info", "warning", "error", "critical"))
                self.assertRegex(record["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

    def test_stop_server_replies_then_exits_and_removes_its_own_spool_dir(self) -> None:
        server = self.start_server()
        spool = self.spool_dir_of(server)
        self.assertTrue(os.path.isdir(spool))
        client = self.connect(server)
        reply = client.request("stopServer")
        self.assertEqual((reply["Code"], reply["Result"]), (0, None))
        self.assertEqual(server.wait_exit(3), 0)
        self.assertFalse(os.path.exists(spool))

    def test_requests_pipelined_after_stop_server_are_not_run(self) -> None:
        server = self.start_server()
        client = self.connect(server)
        client.send("stopServer")
        client.send("serverStatus")
        self.assertEqual(client.read_reply()["Cmd"], "stopServer")
        self.assertTrue(client.is_closed_by_server(3))
        self.assertEqual(server.wait_exit(3), 0)

    def test_sigterm_and_sigint_exit_cleanly(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(signal=signum.name):
                server = self.start_server()
                spool = self.spool_dir_of(server)
                self.connect(server)
                os.kill(server.pid, signum)
                self.assertEqual(server.wait_exit(3), 0)
                self.assertFalse(os.path.exists(spool))
                server.wait_for_log(lambda r: r.get("msg") == "server stopped")

    def test_sigterm_while_a_model_hangs(self) -> None:
        server = self.start_server()
        client = self.connect(server)
        self.assertCode(client.request("addModel", {"ModelName": "b", "ModelFile": "behaviours.py"}), 0)
        client.send("executeModel", {"ModelName": "b", "InputDictionary": {"do": "sleep", "seconds": 60}})
        time.sleep(0.3)
        os.kill(server.pid, signal.SIGTERM)
        self.assertEqual(server.wait_exit(3), 0)

    def test_unix_socket(self) -> None:
        directory = tempfile.mkdtemp(prefix="pst-", dir="/tmp")  # short: socket paths are limited to ~100 bytes
        self.addCleanup(os.rmdir, directory)
        path = os.path.join(directory, "server.sock")
        server = self.start_server(args=["--unix-socket", path], uniq="unix.{port}")
        self.assertEqual((server.ready["host"], server.ready["port"], server.ready["unixSocket"]), (None, None, path))
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertTrue(stat.S_ISSOCK(os.stat(path).st_mode))
        client = self.connect(server)
        self.assertEqual(client.request("hello")["Result"]["Uniq"], "unix.unix")
        self.assertCode(client.request("stopServer"), 0)
        self.assertEqual(server.wait_exit(3), 0)
        self.assertFalse(os.path.exists(path), "the socket file is removed at exit")

    def test_bad_startup_exits_without_a_ready_line(self) -> None:
        result = subprocess.run([sys.executable, SERVER_SCRIPT, "--python-path", os.path.join(self.models, "nope")],
                                capture_output=True, timeout=10)
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stdout, b"")
        self.assertIn(b"not a directory", result.stderr)
        result = subprocess.run([sys.executable, SERVER_SCRIPT, "--python-path", self.models, "--host", "192.0.2.1"],
                                capture_output=True, timeout=10)
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stdout, b"")
        self.assertEqual(json.loads(result.stderr.splitlines()[-1])["level"], "error")


class ParentDeathTest(ServerTestCase):
    """The server's parent is killed with SIGKILL: the server must be gone within 2 s."""

    def start_with_intermediate_parent(self, own_group: bool = False) -> Tuple["subprocess.Popen[bytes]", int, Dict[str, Any]]:
        """A parent that starts the server (leading its own process group when own_group, as the stage does)."""
        launcher = textwrap.dedent(f"""
            import subprocess, sys, time
            server = subprocess.Popen([sys.executable, {SERVER_SCRIPT!r}, "--python-path", {self.models!r},
                                       "--uniq", "orphan"], stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session={own_group!r})
            print(server.pid, flush=True)
            time.sleep(120)
        """)
        parent = subprocess.Popen([sys.executable, "-c", launcher], stdout=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        self.addCleanup(self.kill_quietly, parent.pid)
        self.addCleanup(parent.wait)
        assert parent.stdout is not None
        lines = [parent.stdout.readline(), parent.stdout.readline()]
        ready = next(json.loads(line) for line in lines if line.startswith(b"{"))
        server_pid = next(int(line) for line in lines if not line.startswith(b"{"))
        self.addCleanup(self.kill_quietly, server_pid)
        self.addCleanup(parent.stdout.close)
        self.assertEqual(ready["pid"], server_pid)
        return parent, server_pid, ready

    @staticmethod
    def kill_quietly(pid: int) -> None:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def test_idle_server_exits_when_its_parent_is_killed(self) -> None:
        parent, server_pid, _ = self.start_with_intermediate_parent()
        self.assertTrue(pid_alive(server_pid))
        os.kill(parent.pid, signal.SIGKILL)
        killed = time.monotonic()
        self.assertTrue(wait_until(lambda: not pid_alive(server_pid), 2.0), "server outlived its parent by 2 s")
        self.assertLess(time.monotonic() - killed, 2.0)

    def test_server_exits_when_its_parent_is_killed_while_a_model_hangs(self) -> None:
        self.write_model("behaviours.py", src.BEHAVIOURS)
        parent, server_pid, ready = self.start_with_intermediate_parent()
        client = Client(socket.create_connection((ready["host"], ready["port"]), timeout=5))
        self.addCleanup(client.close)
        self.assertCode(client.request("addModel", {"ModelName": "b", "ModelFile": "behaviours.py"}), 0)
        client.send("executeModel", {"ModelName": "b", "InputDictionary": {"do": "sleep", "seconds": 60}})
        time.sleep(0.2)
        os.kill(parent.pid, signal.SIGKILL)
        self.assertTrue(wait_until(lambda: not pid_alive(server_pid), 2.0), "server outlived its parent by 2 s")

    def test_a_models_helper_process_goes_with_the_server_when_its_parent_is_killed(self) -> None:
        self.write_model("spawner.py", src.SPAWNER)
        parent, server_pid, ready = self.start_with_intermediate_parent(own_group=True)
        client = Client(socket.create_connection((ready["host"], ready["port"]), timeout=5))
        self.addCleanup(client.close)
        self.assertCode(client.request("addModel", {"ModelName": "s", "ModelFile": "spawner.py"}), 0)
        child = client.request("executeModel", {"ModelName": "s", "InputDictionary": {}})["Result"]["child"]
        self.addCleanup(self.kill_quietly, child)
        self.assertTrue(pid_alive(child))
        os.kill(parent.pid, signal.SIGKILL)
        self.assertTrue(wait_until(lambda: not pid_alive(server_pid), 2.0), "server outlived its parent by 2 s")
        self.assertTrue(wait_until(lambda: not pid_alive(child), 2.0), "the model's helper outlived the server")


class ConnectionLifecycleTest(ServerTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.write_model("affine.py", src.AFFINE)
        self.server = self.start_server(token=TOKEN)

    def run_affine(self, client: Client, a: int = 1) -> int:
        reply = client.request("executeModel", {"ModelName": "aff", "InputDictionary": {"a": a, "b": 0}})
        self.assertCode(reply, 0)
        return reply["Result"]["r"]

    def test_reconnect_keeps_models_loaded(self) -> None:
        first = self.connect(self.server, token=TOKEN)
        self.assertCode(first.request("addModel", {"ModelName": "aff", "ModelFile": "affine.py"}, {"k": 5}), 0)
        first.send("executeModel", {"ModelName": "aff", "InputDictionary": {"a": 1, "b": 0}})
        first.close()  # dropped with a reply still on its way
        time.sleep(0.1)
        second = self.connect(self.server, token=TOKEN)
        self.assertEqual(self.run_affine(second, 2), 10)
        status = second.request("serverStatus")["Result"]
        self.assertEqual(status["Models"][0]["Name"], "aff")
        self.assertTrue(pid_alive(self.server.pid))

    def test_new_connection_replaces_the_old_one(self) -> None:
        first = self.connect(self.server, token=TOKEN)
        self.assertCode(first.request("addModel", {"ModelName": "aff", "ModelFile": "affine.py"}), 0)
        waiting = self.connect(self.server, hello=False)  # connected, silent: the first one keeps being served
        self.assertEqual(self.run_affine(first, 1), 3)
        second = self.connect(self.server, token=TOKEN)
        self.assertTrue(first.is_closed_by_server(), "the replaced connection is closed")
        self.assertEqual(self.run_affine(second, 2), 6)
        waiting.send("hello", {"Token": TOKEN})
        self.assertCode(waiting.read_reply(), 0)
        self.assertTrue(second.is_closed_by_server())
        self.assertEqual(self.run_affine(waiting, 3), 9)

    def test_refused_newcomer_does_not_replace(self) -> None:
        first = self.connect(self.server, token=TOKEN)
        self.assertCode(first.request("addModel", {"ModelName": "aff", "ModelFile": "affine.py"}), 0)
        newcomer = self.connect(self.server, hello=False)
        newcomer.send("hello", {"Token": "wrong"})
        self.assertCode(newcomer.read_reply(), -4)
        self.assertEqual(self.run_affine(first, 4), 12)

    def test_without_token_the_first_frame_of_a_new_connection_replaces(self) -> None:
        server = self.start_server()
        first = self.connect(server, hello=False)
        self.assertCode(first.request("addModel", {"ModelName": "aff", "ModelFile": "affine.py"}), 0)
        second = self.connect(server, hello=False)
        self.assertEqual(self.run_affine(first, 1), 3)  # merely connecting replaces nothing
        self.assertEqual(self.run_affine(second, 2), 6)
        self.assertTrue(first.is_closed_by_server())
