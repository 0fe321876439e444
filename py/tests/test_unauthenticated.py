"""Connections that have not said hello: they cannot make the server hold a big frame, they are closed
when they stay silent, and the token itself comes over stdin, out of every process environment."""
import os
import subprocess
import sys
import time

from pystage.frame_encoder import encode_frame
from pystage.model_server import PRE_HELLO_MAX_BYTES
from tests import model_sources as src
from tests.server_fixture import SERVER_SCRIPT, ServerTestCase, payload_of

TOKEN = "pre-hello-token"


class PreHelloTest(ServerTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.write_model("affine.py", src.AFFINE)
        self.server = self.start_server(token=TOKEN, args=["--hello-timeout", "0.5"])

    def test_a_big_frame_before_hello_is_refused_before_it_has_arrived(self) -> None:
        client = self.connect(self.server, hello=False)
        request = {"Cmd": "hello", "CmdVer": 1, "Id": 1, "CmdOptions": {"Token": TOKEN, "Pad": "x" * (1 << 20)}}
        frame = encode_frame(payload_of(request))
        client.sock.settimeout(5)
        # Only a part of the 1 MiB frame is sent: the server must not wait for the rest to hold it.
        client.send_raw(frame[:4 * PRE_HELLO_MAX_BYTES])
        reply = client.read_reply()
        self.assertCode(reply, -4, "NotAuthenticated")
        self.assertIn("before hello", reply["Error"]["Message"])
        self.assertTrue(client.is_closed_by_server())

    def test_a_connection_that_never_says_hello_is_closed(self) -> None:
        silent = self.connect(self.server, hello=False)
        self.assertTrue(silent.is_closed_by_server(timeout=5), "a silent connection is closed after --hello-timeout")
        self.server.wait_for_log(lambda r: r.get("msg") == "connection did not say hello in time: closed")

    def test_an_authenticated_connection_outlives_the_hello_timeout_and_sends_big_frames(self) -> None:
        client = self.connect(self.server, token=TOKEN)
        time.sleep(1.0)
        self.assertCode(client.request("addModel", {"ModelName": "aff", "ModelFile": "affine.py"}), 0)
        big = {"a": 1, "b": 0, "pad": "y" * (4 * PRE_HELLO_MAX_BYTES)}
        self.assertEqual(client.request("executeModel", {"ModelName": "aff", "InputDictionary": big})["Result"]["r"], 3)


class TokenOnStdinTest(ServerTestCase):
    def test_token_read_from_stdin_is_in_no_environment(self) -> None:
        self.write_model("affine.py", src.AFFINE)
        server = self.start_server(token=TOKEN, token_stdin=True)
        with open(f"/proc/{server.pid}/environ", "rb") as handle:
            environ = handle.read().split(b"\0")
        self.assertFalse([e for e in environ if e.startswith(b"PYSTAGE_TOKEN=")])
        with open(f"/proc/{server.pid}/cmdline", "rb") as handle:
            self.assertNotIn(TOKEN.encode(), handle.read())
        refused = self.connect(server, hello=False)
        self.assertCode(refused.request("hello", {"Token": "wrong"}), -4, "NotAuthenticated")
        client = self.connect(server, token=TOKEN)
        self.assertCode(client.request("addModel", {"ModelName": "aff", "ModelFile": "affine.py"}), 0)

    def test_no_token_on_stdin_is_refused_not_served_without_one(self) -> None:
        result = subprocess.run([sys.executable, SERVER_SCRIPT, "--python-path", self.models, "--token-stdin"],
                                input=b"\n", capture_output=True, timeout=10)
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stdout, b"", "no ready line")
        self.assertIn(b"no token", result.stderr)

    def test_stdin_is_dev_null_after_the_token(self) -> None:
        server = self.start_server(token=TOKEN, token_stdin=True)
        self.assertEqual(os.readlink(f"/proc/{server.pid}/fd/0"), "/dev/null")
