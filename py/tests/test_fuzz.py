"""Python-side fuzz of the wire: seeded random and mutated frames against a live server over a real socket.

Each iteration sends some damage (valid frames with flipped bits, truncated or duplicated frames, headers
with random LENGTH values, random garbage, all of it split at random points), then a separator that is sure
to resync the decoder, then one valid request with a known Id, and asserts that the reply to that Id
arrives and that the server is still alive.

Why the separator resyncs: a BEGIN marker inside the damage can claim a payload of up to max-frame-bytes,
and the decoder waits for all of it before checking the END (missing-end then drops only the 4 BEGIN
bytes and scans on). The last BEGIN can start at the damage's last byte (`K`, with `PYS` from what
follows), so the last claim is settled at most 25 + max-frame-bytes + 4 - 1 bytes after the damage ends.
Filler of at least max-frame-bytes + 29 bytes with no 'K' in it (so no BEGIN or END marker can start
inside it) therefore settles every claim, and the probe frame after it is decoded on its own.
"""
import json
import random
import socket
import struct
import time
from typing import Any, Callable, Dict, List, Set

from pystage.frame_decoder import ERROR, FRAME, FrameDecoder
from pystage.frame_encoder import encode_frame
from tests import model_sources as src
from tests.server_fixture import Client, ServerProcess, ServerTestCase, payload_of, pid_alive

SEED = 20240611
ITERATIONS = 300
TOKEN_ITERATIONS = 60
MAX_FRAME = 4096
# Separator length: max-frame-bytes + 29 is the minimum (see the module docstring); a little slack on top.
FILLER_BYTES = MAX_FRAME + 29 + 3
REPLY_TIMEOUT = 5.0
TOKEN = "fuzz-token-0123456789"

# Ids of damage requests stay in [1000, 9999]: bit flips keep a digit a digit (or break the JSON), so a
# damaged Id never reaches the probes' range, and a reply with a probe Id is a reply to that probe.
DAMAGE_ID_BASE = 1000
PROBE_ID_BASE = 1_000_000_000

FRAME_ERROR_KINDS = {"bad-version", "too-long", "missing-end", "bad-checksum", "bad-json"}
REPLY_CODES = {-3, -2, -1, 0, 1}
# Every byte but 'K': no BEGIN (KPYS) and no END (KPYE) marker can start inside the filler.
_NO_K = bytes.maketrans(b"K", b"k")


def ascii_payload(request: Dict[str, Any]) -> bytes:
    """Like payload_of, but with non-ASCII escaped: a lone surrogate is valid JSON, not valid UTF-8."""
    return json.dumps(request, separators=(",", ":")).encode("ascii")


def raw_header(length: int, version: int = 1, checksum: bytes = b"\0" * 16) -> bytes:
    return b"KPYS" + bytes([version]) + checksum + struct.pack(">I", length)


class DamageMaker:
    """Seeded damage: every call returns the bytes of one kind of broken (or half-broken) stream piece."""

    def __init__(self, rng: random.Random, templates: List[Callable[[int], Dict[str, Any]]]) -> None:
        self.rng = rng
        self.templates = templates
        self._serial = 0
        self.kinds: List[Callable[[], bytes]] = [
            self.flipped, self.flipped, self.rechecksummed, self.truncated, self.duplicated,
            self.random_length, self.bad_version, self.garbage, self.garbage, self.mixed,
        ]

    def payload(self) -> bytes:
        self._serial += 1
        req_id = DAMAGE_ID_BASE + self._serial % 9000
        return ascii_payload(self.rng.choice(self.templates)(req_id))

    def frame(self) -> bytes:
        return encode_frame(self.payload())

    def flip_bits(self, data: bytes, most: int, start: int = 0) -> bytes:
        out = bytearray(data)
        for _ in range(self.rng.randint(1, most)):
            index = self.rng.randrange(start, len(out))
            out[index] ^= 1 << self.rng.randrange(8)
        return bytes(out)

    def flipped(self) -> bytes:
        """A valid frame with a few bits flipped anywhere: header, checksum, length, payload or END."""
        return self.flip_bits(self.frame(), 8)

    def rechecksummed(self) -> bytes:
        """A frame whose payload was flipped before framing: a good frame carrying broken or odd JSON."""
        return encode_frame(self.flip_bits(self.payload(), 4))

    def truncated(self) -> bytes:
        data = self.frame()
        return data[:self.rng.randrange(1, len(data))]

    def duplicated(self) -> bytes:
        data = self.frame()
        copies = [data] * self.rng.randint(2, 3)
        if self.rng.random() < 0.3:
            copies[-1] = self.flip_bits(data, 2)
        return b"".join(copies)

    def random_length(self) -> bytes:
        """A header whose LENGTH is random (mostly up to max-frame-bytes), then a short body, maybe an END."""
        rng = self.rng
        payload = self.payload()
        checksum = encode_frame(payload)[5:21] if rng.random() < 0.5 else rng.randbytes(16)
        roll = rng.random()
        if roll < 0.15:
            # The longest claim the decoder must wait out, right at the end of the damage.
            return raw_header(MAX_FRAME, checksum=checksum)
        if roll < 0.7:
            length = rng.randint(0, MAX_FRAME)
        elif roll < 0.85:
            length = rng.randint(MAX_FRAME + 1, 0xFFFFFFFF)
        else:
            length = max(0, len(payload) + rng.randint(-8, 8))
        body = payload if rng.random() < 0.5 else rng.randbytes(rng.randrange(0, 64))
        return raw_header(length, checksum=checksum) + body + (b"KPYE" if rng.random() < 0.5 else b"")

    def bad_version(self) -> bytes:
        data = bytearray(self.frame())
        data[4] = self.rng.choice([0, 2, 0x7F, 0xFF])
        return bytes(data)

    def garbage(self) -> bytes:
        """Random bytes, sometimes with markers and marker prefixes sprinkled in."""
        rng = self.rng
        data = bytearray(rng.randbytes(rng.randint(1, 512)))
        if rng.random() < 0.5:
            for _ in range(rng.randint(1, 4)):
                at = rng.randrange(len(data) + 1)
                data[at:at] = rng.choice([b"K", b"KP", b"KPY", b"KPYS", b"KPYE", b"KPYS\x01"])
        return bytes(data)

    def mixed(self) -> bytes:
        kinds = [kind for kind in self.kinds if kind != self.mixed]
        return b"".join(self.rng.choice(kinds)() for _ in range(self.rng.randint(2, 4)))

    def damage(self) -> bytes:
        return self.rng.choice(self.kinds)()

    def filler(self) -> bytes:
        return self.rng.randbytes(FILLER_BYTES + self.rng.randrange(64)).translate(_NO_K)


def nodelay(client: Client) -> None:
    """Small chunks must leave at once: without this, Nagle would glue the split pieces back together."""
    if client.sock.family in (socket.AF_INET, socket.AF_INET6):
        client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class FuzzTest(ServerTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.rng = random.Random(SEED)
        self.write_model("affine.py", src.AFFINE)

    # --- helpers -------------------------------------------------------------------------------------

    def send_split(self, client: Client, stream: bytes, marks: List[int]) -> None:
        """Send stream in pieces cut at random points, favouring the places in `marks` (piece borders)."""
        rng = self.rng
        if rng.random() < 0.35:
            client.send_raw(stream)
            return
        cuts: Set[int] = set()
        for _ in range(rng.randint(1, 6)):
            if marks and rng.random() < 0.6:
                cuts.add(min(len(stream) - 1, max(1, rng.choice(marks) + rng.randint(-30, 30))))
            else:
                cuts.add(rng.randrange(1, len(stream)))
        pause = rng.random() < 0.4  # a pause makes the server read the pieces separately
        start = 0
        for cut in sorted(cuts) + [len(stream)]:
            client.send_raw(stream[start:cut])
            start = cut
            if pause and cut < len(stream):
                time.sleep(0.001)

    def server_failed(self, server: ServerProcess, what: str) -> None:
        self.fail(f"{what}; server alive: {pid_alive(server.pid)}; stderr tail:\n"
                  + "\n".join(server.stderr_lines[-15:]))

    def check_reply_shape(self, reply: Dict[str, Any], context: str, codes: Set[int] = REPLY_CODES) -> None:
        self.assertIsInstance(reply, dict, context)
        self.assertTrue({"Cmd", "Id", "Code", "Result"} <= set(reply), f"{context}: {reply}")
        self.assertIn(reply["Code"], codes, f"{context}: {reply}")
        if reply["Code"] < 0:
            self.assertIsInstance(reply.get("Error"), dict, f"{context}: {reply}")
            self.assertNotEqual(reply["Error"].get("Type"), "InternalError", f"{context}: {reply}")
            if reply["Code"] == -3:
                self.assertIn(reply["Error"]["Type"], FRAME_ERROR_KINDS, f"{context}: {reply}")

    def read_one(self, server: ServerProcess, client: Client, waiting_for: str, context: str) -> Dict[str, Any]:
        """The next reply; a silent server fails the test after a timeout instead of hanging it."""
        try:
            return client.read_reply()
        except socket.timeout:
            self.server_failed(server, f"{context}: no reply {waiting_for} within {REPLY_TIMEOUT} s")
        except (ConnectionError, OSError) as exc:
            self.server_failed(server, f"{context}: connection lost waiting for a reply {waiting_for}: {exc!r}")
        raise AssertionError("unreachable")

    def read_until(self, server: ServerProcess, client: Client, probe_id: int, context: str) -> List[Dict[str, Any]]:
        """Replies up to and including the one with probe_id."""
        replies: List[Dict[str, Any]] = []
        while True:
            reply = self.read_one(server, client, f"to Id {probe_id} (after {len(replies)} others)", context)
            self.check_reply_shape(reply, context)
            replies.append(reply)
            if reply["Id"] == probe_id:
                return replies
            self.assertTrue(reply["Id"] is None or reply["Id"] < PROBE_ID_BASE,
                            f"{context}: reply to an old probe (out of order or answered twice): {reply}")

    def read_to_close(self, server: ServerProcess, client: Client, context: str) -> List[Dict[str, Any]]:
        """Every reply until the server closes the connection (a reset counts as closing)."""
        replies: List[Dict[str, Any]] = []
        while True:
            try:
                replies.append(client.read_reply())
            except (ConnectionError, OSError) as exc:
                if isinstance(exc, socket.timeout):
                    self.server_failed(server, f"{context}: refused connection not closed within {REPLY_TIMEOUT} s")
                return replies

    def assert_no_internal_errors(self, server: ServerProcess) -> None:
        internal = [r for r in server.logs() if r.get("level") in ("error", "critical")]
        self.assertEqual(internal, [], "the server logged internal failures")

    def stop(self, server: ServerProcess, client: Client) -> None:
        status = client.request("serverStatus")
        self.assertEqual((status["Code"], status["Result"]["Pid"]), (0, server.pid), status)
        self.assertCode(client.request("stopServer"), 0)
        self.assertEqual(server.wait_exit(5), 0)
        self.assert_no_internal_errors(server)

    # --- tests ---------------------------------------------------------------------------------------

    def test_random_and_mutated_frames_never_stop_the_server(self) -> None:
        server = self.start_server(args=["--max-frame-bytes", str(MAX_FRAME)])
        client = self.connect(server)
        nodelay(client)
        self.assertCode(client.request("addModel", {"ModelName": "aff", "ModelFile": "affine.py"}), 0)
        client.sock.settimeout(REPLY_TIMEOUT)
        rng = self.rng

        def execute(req_id: int) -> Dict[str, Any]:
            return {"Cmd": "executeModel", "CmdVer": 1, "Id": req_id, "CmdOptions": {
                "ModelName": "aff", "InputDictionary": {"a": rng.randrange(100), "b": rng.randrange(100)}}}

        templates: List[Callable[[int], Dict[str, Any]]] = [
            lambda req_id: {"Cmd": "serverStatus", "CmdVer": 1, "Id": req_id, "CmdOptions": {}},
            execute,
            lambda req_id: {"Cmd": "executeBatch", "CmdVer": 1, "Id": req_id, "CmdOptions": {
                "ModelName": "aff", "Inputs": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}},
            lambda req_id: {"Cmd": "noSuchCommand", "CmdVer": 1, "Id": req_id, "CmdOptions": {}},
        ]
        maker = DamageMaker(rng, templates)
        error_kinds: Set[str] = set()
        for iteration in range(ITERATIONS):
            context = f"iteration {iteration} (seed {SEED})"
            probe_id = PROBE_ID_BASE + iteration
            a, b = rng.randrange(1000), rng.randrange(1000)
            if iteration % 2:
                probe = {"Cmd": "executeModel", "CmdVer": 1, "Id": probe_id,
                         "CmdOptions": {"ModelName": "aff", "InputDictionary": {"a": a, "b": b}}}
            else:
                probe = {"Cmd": "serverStatus", "CmdVer": 1, "Id": probe_id, "CmdOptions": {}}
            damage = maker.damage()
            filler = maker.filler()
            stream = damage + filler + encode_frame(payload_of(probe))
            try:
                self.send_split(client, stream, [0, len(damage), len(damage) + len(filler)])
            except OSError as exc:
                self.server_failed(server, f"{context}: send failed: {exc!r}")
            replies = self.read_until(server, client, probe_id, context)
            self.assertEqual(client.replies, [], f"{context}: replies after the probe's")
            answer = replies[-1]
            self.assertEqual((answer["Cmd"], answer["Code"]), (probe["Cmd"], 0), f"{context}: {answer}")
            if probe["Cmd"] == "executeModel":
                self.assertEqual(answer["Result"]["r"], a * 3 + b, f"{context}: {answer}")
            else:
                self.assertEqual(answer["Result"]["Pid"], server.pid, f"{context}: {answer}")
            error_kinds.update(r["Error"]["Type"] for r in replies if r["Code"] == -3)
            self.assertTrue(pid_alive(server.pid), f"{context}: the server died")
        # The seed is fixed, so this only checks that the damage really reaches every error path.
        self.assertEqual(error_kinds, FRAME_ERROR_KINDS)
        self.stop(server, client)

    def test_damage_before_hello_with_a_token(self) -> None:
        server = self.start_server(token=TOKEN, args=["--max-frame-bytes", str(MAX_FRAME)])
        rng = self.rng
        templates: List[Callable[[int], Dict[str, Any]]] = [
            lambda req_id: {"Cmd": "serverStatus", "CmdVer": 1, "Id": req_id, "CmdOptions": {}},
            lambda req_id: {"Cmd": "hello", "CmdVer": 1, "Id": req_id, "CmdOptions": {"Token": "wrong"}},
            lambda req_id: {"Cmd": "hello", "CmdVer": 1, "Id": req_id, "CmdOptions": {}},
            lambda req_id: {"Cmd": "hello", "CmdVer": 1, "Id": req_id, "CmdOptions": {"Token": "\ud800"}},
            lambda req_id: {"Cmd": "executeModel", "CmdVer": 1, "Id": req_id, "CmdOptions": {
                "ModelName": "aff", "InputDictionary": {"a": 1, "b": 2}}},
        ]
        maker = DamageMaker(rng, templates)
        # Pure garbage often enough that some connections see no frame before their hello and get in.
        maker.kinds += [maker.garbage] * 4
        # First each template intact (so every kind of wrong first frame is surely tried), then fuzz.
        first = [encode_frame(ascii_payload(template(DAMAGE_ID_BASE))) for template in templates]
        outcomes = {"admitted": 0, "refused": 0}
        for iteration in range(TOKEN_ITERATIONS):
            context = f"token iteration {iteration} (seed {SEED})"
            hello_id = PROBE_ID_BASE + 2 * iteration
            status_id = hello_id + 1
            damage = first[iteration] if iteration < len(first) else maker.damage()
            filler = maker.filler()
            # Any frame or frame error before hello refuses the connection; skipped bytes alone do not.
            events = FrameDecoder(MAX_FRAME).feed(damage + filler)
            refused = any(event.event in (FRAME, ERROR) for event in events)
            stream = (damage + filler
                      + encode_frame(payload_of({"Cmd": "hello", "CmdVer": 1, "Id": hello_id,
                                                 "CmdOptions": {"Token": TOKEN}}))
                      + encode_frame(payload_of({"Cmd": "serverStatus", "CmdVer": 1, "Id": status_id,
                                                 "CmdOptions": {}})))
            client = server.connect()
            self.addCleanup(client.close)
            nodelay(client)
            client.sock.settimeout(REPLY_TIMEOUT)
            try:
                self.send_split(client, stream, [0, len(damage), len(damage) + len(filler)])
            except OSError:
                # The server may close a refused connection while the rest is still being sent.
                self.assertTrue(refused, f"{context}: send failed on a connection that should be admitted")
            if refused:
                # Exactly one reply, the refusal, then the close: nothing pipelined behind it runs.
                replies = self.read_to_close(server, client, context)
                self.assertEqual(len(replies), 1, f"{context}: not one refusal: {replies}")
                self.check_reply_shape(replies[0], context, {-4})
                self.assertEqual(replies[0]["Error"]["Type"], "NotAuthenticated", f"{context}: {replies}")
                self.assertNotIn(replies[0]["Id"], (hello_id, status_id), f"{context}: {replies}")
                if iteration < len(first):
                    self.assertEqual(replies[0]["Id"], DAMAGE_ID_BASE, f"{context}: {replies}")
                outcomes["refused"] += 1
            else:
                replies = [self.read_one(server, client, f"to Id {req_id}", context)
                           for req_id in (hello_id, status_id)]
                self.assertEqual([(r["Cmd"], r["Id"], r["Code"]) for r in replies],
                                 [("hello", hello_id, 0), ("serverStatus", status_id, 0)], context)
                self.assertEqual(replies[1]["Result"]["Pid"], server.pid, context)
                outcomes["admitted"] += 1
            client.close()
            self.assertTrue(pid_alive(server.pid), f"{context}: the server died")
        self.assertGreater(outcomes["admitted"], 0, outcomes)
        self.assertGreater(outcomes["refused"], 0, outcomes)
        client = self.connect(server, token=TOKEN)
        client.sock.settimeout(REPLY_TIMEOUT)
        self.stop(server, client)
