"""The hot path against a live server: replies leave as each request finishes, progress frames, Lean batch
replies, bad messages that fail alone, and replies that stay within the frame limit."""
import json
import os
import re
from typing import Any, Dict, List, Optional, Tuple

from pystage.frame_encoder import encode_frame
from pystage.protocol import encode_json
from tests import model_sources as src
from tests.server_fixture import Client, ServerTestCase, payload_of

# Deeper than Python's json decoder and encoder go on every supported version (both raise RecursionError;
# 3.13 still copes with 5,000 levels).
DEEP = 100_000
PROGRESS_FRAME = re.compile(rb'^\{"Cmd":"progress","Id":(\d+),"Code":2,"Result":\{"Done":(\d+)\}\}$')
LEAN_KEYS = ["Cmd", "Id", "Code", "Errors", "Files", "Result"]


def batch_frame(req_id: int, inputs: List[Any], **options: Any) -> bytes:
    return encode_frame(payload_of({"Cmd": "executeBatch", "CmdVer": 1, "Id": req_id,
                                    "CmdOptions": {"ModelName": "b", "Inputs": inputs, **options}}))


def line_layout(header: bytes, messages: List[bytes]) -> bytes:
    """An executeBatch payload laid out one message per line, as the TypeScript client writes it."""
    return header + b"\n" + b",\n".join(messages) + b"\n]}}"


def keys_in_order(payload: bytes) -> List[str]:
    return [key for key, _ in json.loads(payload, object_pairs_hook=lambda pairs: pairs)]


def encoded(value: Any) -> bytes:
    return encode_json(value).encode("utf-8")


def read_file(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


class HotPathTest(ServerTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.write_model("behaviours.py", src.BEHAVIOURS)
        self.spool = os.path.join(self.models, "spool")

    def serve(self, *args: str, hello: Optional[Dict[str, Any]] = None) -> Client:
        """A server with model "b" (behaviours) and a client; `hello` replaces the fixture's plain hello."""
        server = self.start_server(args=["--spool-dir", self.spool, *args])
        client = self.connect(server, hello=hello is None)
        if hello is not None:
            reply = client.request("hello", hello)
            self.assertCode(reply, 0)
            self.assertEqual(reply["Result"].get("Progress"), hello.get("Progress"), reply)
        self.assertCode(client.request("addModel", {"ModelName": "b", "ModelFile": "behaviours.py"}), 0)
        return client

    def batch(self, client: Client, inputs: List[Any], **options: Any) -> Tuple[bytes, Dict[str, Any]]:
        """Run one executeBatch: the reply's raw payload and its decoded form."""
        req_id = client.next_id()
        client.send_raw(batch_frame(req_id, inputs, **options))
        _, payload = client.read_frame()
        reply = json.loads(payload)
        self.assertEqual((reply["Cmd"], reply["Id"]), ("executeBatch", req_id), reply)
        return payload, reply

    # --- replies leave as each request finishes ----------------------------------------------------------

    def test_each_reply_leaves_as_soon_as_its_request_is_done(self) -> None:
        client = self.serve()
        # Three slow batches in one write, so the server decodes all three from one read.
        client.send_raw(b"".join(batch_frame(10 + i, [{"do": "sleep", "seconds": 0.3}]) for i in range(3)))
        arrivals = [client.read_frame() for _ in range(3)]
        self.assertEqual([json.loads(payload)["Id"] for _, payload in arrivals], [10, 11, 12])
        (first, _), _, (third, _) = arrivals
        # Sent together, the three would arrive together; each after its own batch, 0.6 s apart.
        self.assertLess(first, third - 0.25, "the first reply waited for the batches behind it")

    # --- progress frames -------------------------------------------------------------------------------

    def test_progress_frames_while_a_batch_runs(self) -> None:
        client = self.serve(hello={"Progress": 50})
        req_id = client.next_id()
        client.send_raw(batch_frame(req_id, [{"do": "sleep", "seconds": 0.03}] * 20))
        done: List[int] = []
        while True:
            _, payload = client.read_frame()
            match = PROGRESS_FRAME.match(payload)
            if match is None:
                break
            self.assertEqual(int(match.group(1)), req_id, payload)
            done.append(int(match.group(2)))
        reply = json.loads(payload)
        self.assertEqual((reply["Cmd"], reply["Id"], reply["Code"]), ("executeBatch", req_id, 0), reply)
        self.assertEqual([item["Result"] for item in reply["Result"]], [{"slept": 0.03}] * 20)
        # 20 x 30 ms is 600 ms: about a dozen frames at 50 ms; a busy machine only makes the batch slower.
        self.assertGreaterEqual(len(done), 3, done)
        self.assertEqual(done, sorted(set(done)), "Done must increase from frame to frame")
        self.assertTrue(1 <= done[0] and done[-1] <= 20, done)
        # Only executeBatch sends progress frames.
        reply = client.request("executeModel", {"ModelName": "b", "InputDictionary": {"do": "sleep", "seconds": 0.2}})
        self.assertCode(reply, 0)

    def test_no_progress_frames_without_progress_in_hello(self) -> None:
        client = self.serve(hello={})
        _, reply = self.batch(client, [{"do": "sleep", "seconds": 0.03}] * 20)
        self.assertEqual(len(reply["Result"]), 20)
        self.assertEqual(client.frames, [])

    def test_bad_progress_values_are_refused(self) -> None:
        client = self.serve()
        for value in (0, -50, "50", 1.5, True, None, [50]):
            with self.subTest(value=value):
                self.assertCode(client.request("hello", {"Progress": value}), -1, "BadOption")
        reply = client.request("hello", {"Progress": 1})
        self.assertEqual(reply["Result"]["Progress"], 1)

    # --- Lean batch replies ----------------------------------------------------------------------------

    def test_lean_reply(self) -> None:
        client = self.serve("--inline-limit", "2000")
        inputs = [{"do": "echo", "n": 1, "x": "é"}, {"do": "raise", "why": "2"}, {"do": "none"}, "not an object",
                  {"do": "list"}, {"do": "set"}, {"do": "big", "size": 3000}, {"do": "echo", "n": 8}]
        payload, reply = self.batch(client, inputs, Lean=True)
        self.assertEqual(keys_in_order(payload), LEAN_KEYS)
        self.assertEqual(reply["Code"], 0)
        results = [{"echo": inputs[0]}, None, None, None, None, None, None, {"echo": inputs[7]}]
        self.assertTrue(payload.endswith(b',"Result":' + encoded(results) + b"}"), payload)
        self.assertEqual([(index, code, error["Type"]) for index, code, error in reply["Errors"]],
                         [(1, -2, "ValueError"), (3, -1, "BadInput"), (4, -2, "BadModelOutput"),
                          (5, -2, "BadModelOutput")])
        self.assertEqual(reply["Errors"][0][2]["Message"], "asked to fail: 2")
        self.assertIn("behaviours.py", reply["Errors"][0][2]["Traceback"])
        [(index, path)] = reply["Files"]
        self.assertEqual(index, 6)
        self.assertEqual(read_file(path), encoded({"blob": "x" * 3000}))

    def test_lean_reply_without_failures_and_empty(self) -> None:
        client = self.serve()
        payload, _ = self.batch(client, [{"do": "echo", "n": 1}, {"do": "none"}], Lean=True)
        self.assertEqual(payload, b'{"Cmd":"executeBatch","Id":%d,"Code":0,"Errors":[],"Files":[],"Result":'
                         b'[{"echo":{"do":"echo","n":1}},null]}' % json.loads(payload)["Id"])
        payload, reply = self.batch(client, [], Lean=True)
        self.assertEqual(payload, b'{"Cmd":"executeBatch","Id":%d,"Code":0,"Errors":[],"Files":[],"Result":[]}'
                         % reply["Id"])
        _, reply = self.batch(client, [{"do": "none"}], Lean=False)
        self.assertEqual(reply["Result"], [{"Code": 1, "Result": None}])
        req_id = client.send("executeBatch", {"ModelName": "b", "Inputs": [], "Lean": "yes"})
        reply = client.read_reply()
        self.assertEqual(reply["Id"], req_id)
        self.assertCode(reply, -1, "BadOption")

    # --- a bad message fails alone ---------------------------------------------------------------------

    def test_line_layout_batch_with_bad_messages(self) -> None:
        client = self.serve()
        messages = [b'{"do":"echo","n":0}', b'{"do":"echo" "n":1}', b'{"a":' * DEEP + b"1" + b"}" * DEEP,
                    b"[1]", b'{"do":"echo","s":"\xff"}', b'{"do":"echo","n":NaN}', b'{"do":"echo","n":6}']
        for lean in (True, False):
            with self.subTest(lean=lean):
                req_id = client.next_id()
                header = b'{"Cmd":"executeBatch","CmdVer":1,"Id":%d,"CmdOptions":{%s"ModelName":"b","Inputs":[' % (
                    req_id, b'"Lean":true,' if lean else b"")
                client.send_raw(encode_frame(line_layout(header, messages)))
                reply = client.read_reply()
                self.assertEqual((reply["Cmd"], reply["Id"], reply["Code"]), ("executeBatch", req_id, 0), reply)
                if lean:
                    results = reply["Result"]
                    errors = [(index, code, error) for index, code, error in reply["Errors"]]
                else:
                    results = [item.get("Result") for item in reply["Result"]]
                    errors = [(index, item["Code"], item["Error"]) for index, item in enumerate(reply["Result"])
                              if item["Code"] < 0]
                self.assertEqual(results, [{"echo": {"do": "echo", "n": 0}}, None, None, None, None, None,
                                           {"echo": {"do": "echo", "n": 6}}])
                self.assertEqual([(index, code, error["Type"]) for index, code, error in errors],
                                 [(index, -1, "BadInput") for index in range(1, 6)])
                messages_of = {index: error["Message"] for index, _, error in errors}
                self.assertEqual(messages_of[1], "message is not valid JSON: Expecting ',' delimiter: "
                                                 "line 1 column 14 (char 13)")
                self.assertEqual(messages_of[2], "message is nested too deeply to decode")
                self.assertEqual(messages_of[3], "a message must be a JSON object")
                self.assertTrue(messages_of[4].startswith("message is not valid UTF-8: "), messages_of[4])
                self.assertTrue(messages_of[5].startswith("message is not valid JSON: "), messages_of[5])

    def test_a_payload_without_the_line_layout_is_still_bad_json(self) -> None:
        client = self.serve()
        header = b'{"Cmd":"executeBatch","CmdVer":1,"Id":5,"CmdOptions":{"ModelName":"b","Inputs":['
        messages = [b'{"do":"echo"}', b'{"do":"echo" "n":1}']
        for payload in (line_layout(header, messages) + b"\n",           # a newline after the end
                        header + b",".join(messages) + b"]}}",           # all on one line
                        line_layout(header, messages).replace(b",\n", b"\n"),  # a line without its comma
                        line_layout(header.replace(b"executeBatch", b"executeModel"), messages)):
            with self.subTest(payload=payload[-40:]):
                client.send_raw(encode_frame(payload))
                reply = client.read_reply()
                self.assertCode(reply, -3, "bad-json")
                self.assertEqual((reply["Cmd"], reply["Id"]), (None, None))
        self.assertEqual(self.batch(client, [{"do": "none"}])[1]["Result"], [{"Code": 1, "Result": None}])

    def test_results_too_deep_to_encode_fail_alone(self) -> None:
        client = self.serve()
        inputs = [{"do": "deep", "depth": DEEP}, {"do": "echo", "n": 1}]
        _, reply = self.batch(client, inputs)
        self.assertEqual((reply["Result"][0]["Code"], reply["Result"][0]["Error"]["Type"]), (-2, "BadModelOutput"))
        self.assertEqual(reply["Result"][1], {"Code": 0, "Result": {"echo": {"do": "echo", "n": 1}}})
        _, reply = self.batch(client, inputs, Lean=True)
        self.assertEqual(reply["Result"], [None, {"echo": {"do": "echo", "n": 1}}])
        self.assertEqual([(index, code, error["Type"]) for index, code, error in reply["Errors"]],
                         [(0, -2, "BadModelOutput")])
        reply = client.request("executeModel", {"ModelName": "b", "InputDictionary": inputs[0]})
        self.assertCode(reply, -2, "BadModelOutput")
        self.assertCode(client.request("serverStatus"), 0)

    # --- reply bytes are bounded -----------------------------------------------------------------------

    def test_replies_stay_within_the_frame_limit(self) -> None:
        max_frame = 1024 * 1024
        client = self.serve("--max-frame-bytes", str(max_frame), "--inline-limit", str(max_frame))
        output = encoded({"blob": "x" * 100_000})
        inputs = [{"do": "big", "size": 100_000}] * 64
        for lean in (True, False):
            with self.subTest(lean=lean):
                payload, reply = self.batch(client, inputs, Lean=lean)
                self.assertLessEqual(len(payload), max_frame)
                if lean:
                    self.assertEqual(reply["Errors"], [])
                    files = dict(reply["Files"])
                    inline = {index: result for index, result in enumerate(reply["Result"]) if result is not None}
                else:
                    self.assertEqual({item["Code"] for item in reply["Result"]}, {0})
                    files = {index: item["OutputFile"] for index, item in enumerate(reply["Result"])
                             if "OutputFile" in item}
                    inline = {index: item["Result"] for index, item in enumerate(reply["Result"])
                              if item["Result"] is not None}
                self.assertTrue(files and inline, (len(files), len(inline)))
                self.assertEqual(sorted([*files, *inline]), list(range(64)))
                for path in files.values():
                    self.assertEqual(read_file(path), output)
                    os.unlink(path)
                self.assertEqual(list(inline.values()), [{"blob": "x" * 100_000}] * len(inline))
        # executeModel keeps to the same budget: half a frame.
        reply = client.request("executeModel", {"ModelName": "b", "InputDictionary": {"do": "big", "size": 600_000}})
        self.assertEqual((reply["Code"], reply["Result"]), (0, None))
        self.assertEqual(read_file(reply["OutputFile"]), encoded({"blob": "x" * 600_000}))
