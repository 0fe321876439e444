"""The shared token: hello first, the right token, or -4 and the connection closed with nothing run."""
import os
from typing import List, Optional

from pystage.frame_encoder import encode_frame
from tests import model_sources as src
from tests.server_fixture import Client, ServerTestCase, payload_of

TOKEN = "s3cret-t0ken-value"


class TokenTest(ServerTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.write_model("side_effect.py", src.SIDE_EFFECT)
        self.write_model("behaviours.py", src.BEHAVIOURS)
        self.effects = os.path.join(self.models, "effects.log")
        self.marker = os.path.join(self.models, "imported.marker")
        self.server = self.start_server(token=TOKEN)

    def effect_lines(self) -> List[str]:
        if not os.path.exists(self.effects):
            return []
        with open(self.effects) as handle:
            return handle.read().split()

    def assert_refused_and_closed(self, client: Client, reply_id: Optional[int] = None,
                                  cmd: Optional[str] = None) -> None:
        reply = client.read_reply()
        self.assertCode(reply, -4, "NotAuthenticated")
        self.assertEqual((reply["Cmd"], reply["Id"]), (cmd, reply_id))
        # A hello is told its token is wrong; anything else that hello must come first.
        expected = "wrong or missing token" if cmd == "hello" else "the first request must be hello with the token"
        self.assertEqual(reply["Error"]["Message"], expected)
        self.assertTrue(client.is_closed_by_server(), "the server closes a refused connection")

    def test_commands_before_hello_are_refused_and_nothing_runs(self) -> None:
        owner = self.connect(self.server, token=TOKEN)
        self.assertCode(owner.request("addModel", {"ModelName": "fx", "ModelFile": "side_effect.py"},
                                      {"log": self.effects}), 0)
        os.unlink(self.marker)
        self.assertCode(owner.request("executeModel", {"ModelName": "fx", "InputDictionary": {"seq": 1}}), 0)
        self.assertEqual(self.effect_lines(), ["1"])

        intruder = self.connect(self.server, hello=False)
        intruder.send("executeModel", {"ModelName": "fx", "InputDictionary": {"seq": 2}}, req_id=41)
        self.assert_refused_and_closed(intruder, 41, "executeModel")

        intruder = self.connect(self.server, hello=False)
        # Pipelined behind a refused first frame: none of it may run either.
        intruder.send_raw(b"".join(encode_frame(payload_of(r)) for r in [
            {"Cmd": "addModel", "CmdVer": 1, "Id": 1,
             "CmdOptions": {"ModelName": "fx2", "ModelFile": "side_effect.py"}, "ModelOptions": {"log": self.effects}},
            {"Cmd": "hello", "CmdVer": 1, "Id": 2, "CmdOptions": {"Token": TOKEN}},
            {"Cmd": "executeModel", "CmdVer": 1, "Id": 3, "CmdOptions": {"ModelName": "fx", "InputDictionary": {"seq": 3}}},
        ]))
        self.assert_refused_and_closed(intruder, 1, "addModel")

        self.assertEqual(self.effect_lines(), ["1"], "nothing ran for the refused connections")
        self.assertFalse(os.path.exists(self.marker), "the refused addModel did not even import the file")
        # The authenticated connection was never disturbed by them.
        self.assertCode(owner.request("executeModel", {"ModelName": "fx", "InputDictionary": {"seq": 4}}), 0)
        self.assertEqual(self.effect_lines(), ["1", "4"])
        self.assertEqual([m["Name"] for m in owner.request("serverStatus")["Result"]["Models"]], ["fx"])

    def test_wrong_or_missing_token(self) -> None:
        for options in ({"Token": "wrong"}, {}, {"Token": 12345}, {"Token": TOKEN + "x"}):
            with self.subTest(options=options):
                client = self.connect(self.server, hello=False)
                client.send("hello", options, req_id=7)
                self.assert_refused_and_closed(client, 7, "hello")

    def test_a_bad_frame_first_is_refused(self) -> None:
        client = self.connect(self.server, hello=False)
        client.send_raw(encode_frame(b"not json"))
        self.assert_refused_and_closed(client)
        client = self.connect(self.server, hello=False)
        client.send_raw(b"KPYS\x02" + b"\0" * 20 + b"{}KPYE")
        self.assert_refused_and_closed(client)
        # A hello whose checksum is wrong is still a hello that did not prove the token.
        client = self.connect(self.server, hello=False)
        frame = bytearray(encode_frame(payload_of({"Cmd": "hello", "CmdVer": 1, "Id": 5, "CmdOptions": {"Token": TOKEN}})))
        frame[5] ^= 0xFF  # the first CHECKSUM byte, after BEGIN and VERSION
        client.send_raw(bytes(frame))
        self.assert_refused_and_closed(client, 5, "hello")

    def test_right_token_then_commands_pipelined_with_it(self) -> None:
        client = self.connect(self.server, hello=False)
        client.send_raw(b"".join(encode_frame(payload_of(r)) for r in [
            {"Cmd": "hello", "CmdVer": 1, "Id": 1, "CmdOptions": {"Token": TOKEN}},
            {"Cmd": "addModel", "CmdVer": 1, "Id": 2, "CmdOptions": {"ModelName": "b", "ModelFile": "behaviours.py"}},
            {"Cmd": "executeModel", "CmdVer": 1, "Id": 3, "CmdOptions": {"ModelName": "b", "InputDictionary": {"do": "context"}}},
        ]))
        replies = [client.read_reply() for _ in range(3)]
        self.assertEqual([r["Code"] for r in replies], [0, 0, 0])
        self.assertEqual(replies[0]["Result"]["Uniq"], f"test.{self.server.port}")
        self.assertIsNone(replies[2]["Result"]["token"], "models cannot read PYSTAGE_TOKEN")
        # A later hello on the same connection with a wrong token ends it.
        client.send("hello", {"Token": "nope"}, req_id=4)
        self.assert_refused_and_closed(client, 4, "hello")

    def test_token_is_never_logged(self) -> None:
        client = self.connect(self.server, token=TOKEN)
        client.request("serverStatus")
        bad = self.connect(self.server, hello=False)
        bad.send("hello", {"Token": TOKEN[:-1]})
        bad.read_reply()
        client.request("stopServer")
        self.server.wait_exit()
        self.assertTrue(self.server.stderr_lines)
        for line in self.server.stderr_lines:
            self.assertNotIn(TOKEN[:-1], line)


class NoTokenTest(ServerTestCase):
    def test_without_a_token_commands_run_without_hello(self) -> None:
        self.write_model("affine.py", src.AFFINE)
        server = self.start_server()
        client = self.connect(server, hello=False)
        self.assertCode(client.request("addModel", {"ModelName": "aff", "ModelFile": "affine.py"}), 0)
        self.assertCode(client.request("hello", {"Token": "anything"}), 0)
        self.assertEqual(client.request("executeModel", {"ModelName": "aff", "InputDictionary": {"a": 1, "b": 0}})
                         ["Result"]["r"], 3)
