"""The frame checksum negotiated in hello, against a live server: CRC32 frames (VERSION 2) only after a
hello asked for them, MD5 (VERSION 1) otherwise; the server takes either kind of frame at any time.

Frames are read raw here and their checksums computed with hashlib/zlib directly, not with the
project's codec."""
import hashlib
import json
import struct
import zlib
from typing import Any, Dict, Tuple

from tests.server_fixture import Client, ServerTestCase, payload_of


def read_raw_frame(client: Client) -> Tuple[int, bytes, bytes]:
    """(VERSION, CHECKSUM field, payload) of the next frame on the socket."""
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = client.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("server closed the connection")
            data += chunk
        return data
    head = exactly(25)
    assert head[:4] == b"KPYS", head
    (length,) = struct.unpack(">I", head[21:25])
    payload = exactly(length)
    assert exactly(4) == b"KPYE"
    return head[4], head[5:21], payload


def hand_frame(version: int, request: Dict[str, Any]) -> bytes:
    payload = payload_of(request)
    field = hashlib.md5(payload).digest() if version == 1 else struct.pack(">I", zlib.crc32(payload)) + bytes(12)
    return b"KPYS" + bytes([version]) + field + struct.pack(">I", len(payload)) + payload + b"KPYE"


def crc_field(payload: bytes) -> bytes:
    return struct.pack(">I", zlib.crc32(payload)) + bytes(12)


class ChecksumNegotiationTest(ServerTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.server = self.start_server()

    def hello(self, client: Client, options: Dict[str, Any]) -> Tuple[int, bytes, Dict[str, Any]]:
        client.send_raw(hand_frame(1, {"Cmd": "hello", "CmdVer": 1, "Id": 1, "CmdOptions": options}))
        version, field, payload = read_raw_frame(client)
        return version, field, json.loads(payload)

    def test_crc32_agreed_in_hello_is_used_for_every_frame_the_server_sends(self) -> None:
        client = self.connect(self.server, hello=False)
        version, field, reply = self.hello(client, {"Checksum": "crc32"})
        self.assertEqual(reply["Code"], 0, reply)
        self.assertEqual(reply["Result"]["Checksum"], "crc32")
        # Requests in either kind of frame get CRC32 replies from now on.
        for request_version, req_id in ((2, 2), (1, 3)):
            client.send_raw(hand_frame(request_version, {"Cmd": "serverStatus", "CmdVer": 1, "Id": req_id, "CmdOptions": {}}))
            version, field, payload = read_raw_frame(client)
            self.assertEqual(version, 2)
            self.assertEqual(field, crc_field(payload))
            self.assertEqual(json.loads(payload)["Id"], req_id)

    def test_without_the_option_the_server_sends_md5_frames_and_says_nothing(self) -> None:
        client = self.connect(self.server, hello=False)
        version, field, reply = self.hello(client, {})
        self.assertEqual(reply["Code"], 0, reply)
        self.assertNotIn("Checksum", reply["Result"])
        client.send_raw(hand_frame(2, {"Cmd": "serverStatus", "CmdVer": 1, "Id": 2, "CmdOptions": {}}))
        version, field, payload = read_raw_frame(client)
        self.assertEqual((version, field), (1, hashlib.md5(payload).digest()))
        self.assertEqual(json.loads(payload)["Code"], 0)

    def test_an_unknown_checksum_is_refused_and_changes_nothing(self) -> None:
        client = self.connect(self.server, hello=False)
        _, _, agreed = self.hello(client, {"Checksum": "crc32"})
        self.assertEqual(agreed["Result"]["Checksum"], "crc32")
        client.send_raw(hand_frame(1, {"Cmd": "hello", "CmdVer": 1, "Id": 2, "CmdOptions": {"Checksum": "sha1"}}))
        version, field, payload = read_raw_frame(client)
        reply = json.loads(payload)
        self.assertEqual((reply["Code"], reply["Error"]["Type"]), (-1, "BadOption"), reply)
        self.assertEqual((version, field), (2, crc_field(payload)), "a refused hello keeps what was agreed")
