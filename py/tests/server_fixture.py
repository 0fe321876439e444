"""Test support: start a real server process, talk to it over a real socket.

Every process started here is killed by pid in the test's cleanup.
"""
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest
from typing import Any, Dict, List, Optional, Tuple

from pystage.frame_decoder import ERROR, FRAME, FrameDecoder
from pystage.frame_encoder import encode_frame

SERVER_SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "server.py")
TIMEOUT = 10.0


def payload_of(request: Dict[str, Any]) -> bytes:
    return json.dumps(request, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def pid_alive(pid: int) -> bool:
    """True while pid runs; a zombie (exited, not yet reaped by its new parent) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, IndexError):
        return os.path.exists(f"/proc/{pid}") if os.path.isdir("/proc") else True


def wait_until(predicate: Any, timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


class ServerProcess:
    """A server started as `python3 py/server.py ...`, with its ready line and its stderr log lines."""

    def __init__(self, python_path: str, token: Optional[str] = None, args: Optional[List[str]] = None,
                 uniq: str = "test.{port}", token_stdin: bool = False, python: str = sys.executable) -> None:
        env = dict(os.environ)
        env.pop("PYSTAGE_TOKEN", None)
        if token is not None and not token_stdin:
            env["PYSTAGE_TOKEN"] = token
        command = [python, SERVER_SCRIPT, "--python-path", python_path, "--uniq", uniq,
                   "--log-level", "debug", *(["--token-stdin"] if token_stdin else []), *(args or [])]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE if token_stdin else subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        if token_stdin:
            assert self.process.stdin is not None
            self.process.stdin.write((token or "").encode("utf-8") + b"\n")
            self.process.stdin.close()
        self.pid = self.process.pid
        self.stderr_lines: List[str] = []
        self._stderr_thread = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_thread.start()
        self.ready = self._read_ready()
        self.host: Optional[str] = self.ready["host"]
        self.port: Optional[int] = self.ready["port"]
        self.unix_socket: Optional[str] = self.ready["unixSocket"]

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            self.stderr_lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def _read_ready(self) -> Dict[str, Any]:
        assert self.process.stdout is not None
        result: Dict[str, Any] = {}

        def read() -> None:
            result["line"] = self.process.stdout.readline()  # type: ignore[union-attr]

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(TIMEOUT)
        line = result.get("line", b"")
        if not line:
            self.kill()
            raise AssertionError("no ready line; stderr:\n" + "\n".join(self.stderr_lines[-20:]))
        return json.loads(line)

    def rest_of_stdout(self) -> bytes:
        """Everything the server wrote to stdout after its ready line (call after it exited)."""
        assert self.process.stdout is not None
        return self.process.stdout.read()

    def logs(self) -> List[Dict[str, Any]]:
        records = []
        for line in list(self.stderr_lines):
            try:
                records.append(json.loads(line))
            except ValueError:
                records.append({"raw": line})
        return records

    def wait_for_log(self, predicate: Any, timeout: float = 5.0) -> Dict[str, Any]:
        """The first log record matching predicate, waiting for it to be read from stderr."""
        found: List[Dict[str, Any]] = []

        def seen() -> bool:
            found[:] = [r for r in self.logs() if predicate(r)]
            return bool(found)

        if not wait_until(seen, timeout):
            raise AssertionError("no such log record; stderr:\n" + "\n".join(self.stderr_lines[-20:]))
        return found[0]

    def wait_exit(self, timeout: float = TIMEOUT) -> Optional[int]:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._stderr_thread.join(timeout)  # so logs() holds every line the process wrote
        return code

    def kill(self) -> None:
        """Stop the process by pid: SIGTERM (so it removes its own spool dir), SIGKILL if it lingers."""
        for signum, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, TIMEOUT)):
            if self.process.poll() is not None:
                break
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                break
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                continue
        self._stderr_thread.join(2)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def connect(self) -> "Client":
        if self.unix_socket is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(TIMEOUT)
            sock.connect(self.unix_socket)
        else:
            sock = socket.create_connection((self.host, self.port), timeout=TIMEOUT)
        return Client(sock)


class Client:
    """A blocking test client: frames out, replies in (decoded by the project's decoder)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.decoder = FrameDecoder()
        # Payloads received but not read yet, each with the monotonic time its bytes arrived.
        self.frames: List[Tuple[float, bytes]] = []
        self._ids = itertools.count(1)

    @property
    def replies(self) -> List[Dict[str, Any]]:
        """The replies received but not read yet."""
        return [json.loads(payload) for _, payload in self.frames]

    def next_id(self) -> int:
        return next(self._ids)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, cmd: str, options: Optional[Dict[str, Any]] = None, model_options: Any = None,
             req_id: Optional[int] = None) -> int:
        req_id = self.next_id() if req_id is None else req_id
        request: Dict[str, Any] = {"Cmd": cmd, "CmdVer": 1, "Id": req_id, "CmdOptions": options or {}}
        if model_options is not None:
            request["ModelOptions"] = model_options
        self.sock.sendall(encode_frame(payload_of(request)))
        return req_id

    def read_frame(self) -> Tuple[float, bytes]:
        """The next frame's payload as it came, with the time it arrived (time.monotonic())."""
        while not self.frames:
            data = self.sock.recv(1 << 16)
            if not data:
                raise ConnectionError("server closed the connection")
            arrived = time.monotonic()
            for event in self.decoder.feed(data):
                if event.event == FRAME:
                    assert event.payload is not None
                    self.frames.append((arrived, event.payload))
                elif event.event == ERROR:
                    raise AssertionError(f"bad reply frame: {event.kind}")
        return self.frames.pop(0)

    def read_reply(self) -> Dict[str, Any]:
        reply: Dict[str, Any] = json.loads(self.read_frame()[1])
        return reply

    def request(self, cmd: str, options: Optional[Dict[str, Any]] = None, model_options: Any = None) -> Dict[str, Any]:
        req_id = self.send(cmd, options, model_options)
        reply = self.read_reply()
        assert reply["Id"] == req_id, f"reply Id {reply['Id']} for request {req_id}: {reply}"
        assert reply["Cmd"] == cmd, reply
        return reply

    def is_closed_by_server(self, timeout: float = 2.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(1 << 16)
                if not data:
                    return True
                self.decoder.feed(data)
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(TIMEOUT)

    def close(self) -> None:
        self.sock.close()


class ServerTestCase(unittest.TestCase):
    """Gives each test a temp python path (`self.models`), servers that are killed afterwards, and clients."""

    def setUp(self) -> None:
        self.models = tempfile.mkdtemp(prefix="pystage-test-models-")
        self.addCleanup(shutil.rmtree, self.models, True)

    def write_model(self, relative: str, source: str) -> str:
        path = os.path.join(self.models, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(textwrap.dedent(source))
        return path

    def start_server(self, python_path: Optional[str] = None, token: Optional[str] = None,
                     args: Optional[List[str]] = None, uniq: str = "test.{port}",
                     token_stdin: bool = False, python: str = sys.executable) -> ServerProcess:
        server = ServerProcess(python_path or self.models, token=token, args=args, uniq=uniq, token_stdin=token_stdin,
                               python=python)
        self.addCleanup(server.kill)
        return server

    def connect(self, server: ServerProcess, token: Optional[str] = None, hello: bool = True) -> Client:
        client = server.connect()
        self.addCleanup(client.close)
        if hello:
            reply = client.request("hello", {"Token": token} if token is not None else {})
            self.assertEqual(reply["Code"], 0, reply)
        return client

    def assertCode(self, reply: Dict[str, Any], code: int, error_type: Optional[str] = None) -> None:
        self.assertEqual(reply["Code"], code, reply)
        if code < 0:
            self.assertIsInstance(reply.get("Error"), dict, reply)
            self.assertIn("Message", reply["Error"])
            self.assertIn("Traceback", reply["Error"])
            if error_type is not None:
                self.assertEqual(reply["Error"]["Type"], error_type, reply)
        else:
            self.assertNotIn("Error", reply)
