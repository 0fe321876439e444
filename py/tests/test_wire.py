"""The wire against a live server: damaged frames, fragmentation down to single bytes, pipelining."""
import hashlib
import json
import struct
import threading
import time
from typing import Any, Dict, List

from pystage.frame_encoder import encode_frame
from tests import model_sources as src
from tests.server_fixture import ServerTestCase, payload_of

MAX_FRAME = 4096


def raw_frame(payload: bytes, version: int = 1, checksum: bytes = b"", length: int = -1, end: bytes = b"KPYE") -> bytes:
    return (b"KPYS" + bytes([version]) + (checksum or hashlib.md5(payload).digest())
            + struct.pack(">I", len(payload) if length < 0 else length) + payload + end)


def execute_request(req_id: int, a: int, b: int) -> Dict[str, Any]:
    return {"Cmd": "executeModel", "CmdVer": 1, "Id": req_id,
            "CmdOptions": {"ModelName": "aff", "InputDictionary": {"a": a, "b": b, "seq": req_id}}}


class WireTest(ServerTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.write_model("affine.py", src.AFFINE)
        self.server = self.start_server(args=["--max-frame-bytes", str(MAX_FRAME)])
        self.client = self.connect(self.server)
        self.assertCode(self.client.request("addModel", {"ModelName": "aff", "ModelFile": "affine.py"}), 0)

    def assert_still_serving(self, seq: int) -> None:
        reply = self.client.request("executeModel", {"ModelName": "aff", "InputDictionary": {"a": seq, "b": 1}})
        self.assertEqual(reply["Result"]["r"], seq * 3 + 1)

    def test_bad_frames_get_minus_3_and_the_connection_stays_usable(self) -> None:
        good = payload_of(execute_request(70, 1, 1))
        cases = [
            ("bad-checksum", raw_frame(good, checksum=b"\0" * 16), ("executeModel", 70)),
            ("bad-checksum", raw_frame(b"\xff\xfe not json", checksum=b"\1" * 16), (None, None)),
            ("bad-version", raw_frame(good, version=3), (None, None)),
            ("too-long", raw_frame(b"x" * (MAX_FRAME + 1)), (None, None)),
            ("missing-end", raw_frame(good, length=len(good) - 3), (None, None)),
            ("missing-end", raw_frame(good, end=b"KPYX"), (None, None)),
            ("bad-json", encode_frame(b"not json at all"), (None, None)),
            ("bad-json", encode_frame(b"[1,2,3]"), (None, None)),
            ("bad-json", encode_frame(b'{"Cmd":"hello","x":"\xff"}'), (None, None)),
            ("bad-json", encode_frame(b'{"Cmd":"hello","Id":1,"x":NaN}'), (None, None)),
            ("bad-json", encode_frame(b""), (None, None)),
        ]
        for seq, (kind, data, (cmd, req_id)) in enumerate(cases):
            with self.subTest(kind=kind, case=seq):
                self.client.send_raw(data)
                reply = self.client.read_reply()
                self.assertCode(reply, -3, kind)
                self.assertEqual((reply["Cmd"], reply["Id"]), (cmd, req_id))
                self.assert_still_serving(seq)

    def test_garbage_between_frames_is_skipped_without_a_reply(self) -> None:
        self.client.send_raw(b"\x00garbage KPY KPYE junk" + encode_frame(payload_of(execute_request(1, 2, 3)))
                             + b"KP" + encode_frame(payload_of(execute_request(2, 4, 5))))
        first, second = self.client.read_reply(), self.client.read_reply()
        self.assertEqual((first["Id"], first["Result"]["r"]), (1, 9))
        self.assertEqual((second["Id"], second["Result"]["r"]), (2, 17))
        self.server.wait_for_log(lambda r: r.get("msg", "").startswith("bytes skipped"))

    def test_requests_sent_one_byte_at_a_time(self) -> None:
        stream = b"".join(encode_frame(payload_of(execute_request(i, i, 2))) for i in range(100, 104))
        stream += encode_frame(payload_of({"Cmd": "executeBatch", "CmdVer": 1, "Id": 104, "CmdOptions": {
            "ModelName": "aff", "Inputs": [{"a": 1, "b": 0}, {"a": 2, "b": 0}]}}))
        for index in range(len(stream)):
            self.client.send_raw(stream[index:index + 1])
            if index < 160:
                time.sleep(0.001)  # the first frame surely arrives in many separate reads
        replies = [self.client.read_reply() for _ in range(5)]
        self.assertEqual([r["Id"] for r in replies], [100, 101, 102, 103, 104])
        self.assertEqual([r["Result"]["r"] for r in replies[:4]], [302, 305, 308, 311])
        self.assertEqual([item["Result"]["r"] for item in replies[4]["Result"]], [3, 6])

    def test_a_thousand_pipelined_requests(self) -> None:
        count = 1000
        stream = b"".join(encode_frame(payload_of(execute_request(i, i * 7 % 101, i % 13)))
                          for i in range(1, count + 1))
        # Written from another thread while replies are read here, as a real pipelining client does.
        writer = threading.Thread(target=self.client.send_raw, args=(stream,))
        writer.start()
        replies: List[Dict[str, Any]] = [self.client.read_reply() for _ in range(count)]
        writer.join()
        self.assertEqual([r["Id"] for r in replies], list(range(1, count + 1)))
        for i, reply in enumerate(replies, start=1):
            self.assertEqual(reply["Code"], 0, reply)
            self.assertEqual(reply["Result"], {"r": (i * 7 % 101) * 3 + i % 13, "seq": i})

    def test_pipelined_batches_and_commands_keep_request_order(self) -> None:
        frames = []
        expected: List[Any] = []
        for i in range(1, 201):
            if i % 10 == 0:
                frames.append(payload_of({"Cmd": "serverStatus", "CmdVer": 1, "Id": i}))
                expected.append("status")
            else:
                inputs = [{"a": i, "b": k} for k in range(i % 7)]
                frames.append(payload_of({"Cmd": "executeBatch", "CmdVer": 1, "Id": i,
                                          "CmdOptions": {"ModelName": "aff", "Inputs": inputs}}))
                expected.append([i * 3 + k for k in range(i % 7)])
        self.client.send_raw(b"".join(encode_frame(f) for f in frames))
        for i, want in enumerate(expected, start=1):
            reply = self.client.read_reply()
            self.assertEqual(reply["Id"], i)
            if want == "status":
                self.assertEqual(reply["Cmd"], "serverStatus")
            else:
                self.assertEqual([item["Result"]["r"] for item in reply["Result"]], want)

    def test_frame_of_exactly_max_frame_bytes_is_accepted(self) -> None:
        base = {"Cmd": "executeModel", "CmdVer": 1, "Id": 9,
                "CmdOptions": {"ModelName": "aff", "InputDictionary": {"a": 1, "b": 1, "pad": ""}}}
        padding = MAX_FRAME - len(payload_of(base))
        base["CmdOptions"]["InputDictionary"]["pad"] = "p" * padding
        payload = payload_of(base)
        self.assertEqual(len(payload), MAX_FRAME)
        self.client.send_raw(encode_frame(payload))
        self.assertEqual(self.client.read_reply()["Result"]["r"], 4)

    def test_json_whitespace_and_unicode(self) -> None:
        self.client.send_raw(encode_frame(json.dumps(execute_request(5, 2, 2), indent=2).encode() + b"\n"))
        self.assertEqual(self.client.read_reply()["Result"]["r"], 8)


class BigFramesTest(ServerTestCase):
    """Frames of several MiB both ways: the request arrives over many reads, the reply leaves over many sends."""

    def test_big_request_and_big_inline_reply(self) -> None:
        self.write_model("behaviours.py", src.BEHAVIOURS)
        server = self.start_server(args=["--inline-limit", str(64 * 1024 * 1024)])
        client = self.connect(server)
        self.assertCode(client.request("addModel", {"ModelName": "b", "ModelFile": "behaviours.py"}), 0)
        blob = "é" * (3 * 1024 * 1024)  # 6 MiB of UTF-8
        reply = client.request("executeModel", {"ModelName": "b", "InputDictionary": {"do": "echo", "blob": blob}})
        self.assertEqual(reply["Result"]["echo"]["blob"], blob)
        reply = client.request("executeModel", {"ModelName": "b", "InputDictionary": {"do": "big", "size": 12_000_000}})
        self.assertEqual(len(reply["Result"]["blob"]), 12_000_000)
        self.assertCode(client.request("serverStatus"), 0)

    def test_many_pipelined_batches_carry_every_message(self) -> None:
        self.write_model("affine.py", src.AFFINE)
        server = self.start_server()
        client = self.connect(server)
        self.assertCode(client.request("addModel", {"ModelName": "aff", "ModelFile": "affine.py"}), 0)
        batch, batches = 256, 80
        frames = []
        for j in range(batches):
            inputs = [{"key": f"k{i % 10}", "a": i, "b": 1, "seq": i} for i in range(j * batch, (j + 1) * batch)]
            frames.append(encode_frame(payload_of({"Cmd": "executeBatch", "CmdVer": 1, "Id": 1000 + j,
                                                   "CmdOptions": {"ModelName": "aff", "Inputs": inputs}})))
        writer = threading.Thread(target=client.send_raw, args=(b"".join(frames),))
        writer.start()
        seqs = []
        for j in range(batches):
            reply = client.read_reply()
            self.assertEqual((reply["Id"], reply["Code"], len(reply["Result"])), (1000 + j, 0, batch))
            for item in reply["Result"]:
                self.assertEqual(item["Result"]["r"], item["Result"]["seq"] * 3 + 1)
                seqs.append(item["Result"]["seq"])
        writer.join()
        self.assertEqual(seqs, list(range(batch * batches)))
