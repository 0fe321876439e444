"""self.context against a live server: state changes in replies (only when hello asked), per-message commit
and rollback, restoreState, the state limit, host requests answered on the same connection while a batch
runs (frames pipelined behind it wait), timeouts, and old clients that never see a hostRequest frame."""
import json
from typing import Any, Dict, List, Tuple

from pystage.frame_encoder import encode_frame
from tests.server_fixture import Client, ServerTestCase, payload_of

COUNTER = """
from pystage import Model, StateFullError

class Counter(Model):
    def execute(self, msg):
        if msg.get("fail_before"):
            raise ValueError("before")
        key = msg["key"]
        n = self.context.state.get(key, 0) + 1
        self.context.state[key] = n
        if msg.get("big"):
            self.context.state["big"] = "x" * msg["big"]
        if msg.get("fail"):
            raise ValueError("after writing")
        if msg.get("drop"):
            del self.context.state[key]
        return {"key": key, "n": n, "keys": sorted(self.context.state.keys())}
"""

VECTORISED = """
from pystage import Model

class VecCounter(Model):
    def _count(self, msg):
        n = self.context.state.get(msg["key"], 0) + 1
        self.context.state[msg["key"]] = n
        return n

    def execute_batch(self, msgs):
        out = [{"n": self._count(m), "batch": True} for m in msgs]
        if any(m.get("boom") for m in msgs):
            raise ValueError("boom in the batch")
        return out

    def execute(self, msg):
        n = self._count(msg)
        if msg.get("boom"):
            raise ValueError("boom alone")
        return {"n": n, "batch": False}
"""

ASKER = """
from pystage import Model, HostRequestError

class Asker(Model):
    def execute(self, msg):
        try:
            answer = self.context.request(msg["handler"], msg.get("payload"), timeout=msg.get("timeout"))
        except HostRequestError as exc:
            return {"error": str(exc), "type": exc.type}
        return {"answer": answer}
"""


def batch(client: Client, model: str, inputs: List[Any], lean: bool = True) -> int:
    req_id = client.next_id()
    client.send_raw(encode_frame(payload_of({"Cmd": "executeBatch", "CmdVer": 1, "Id": req_id,
                                             "CmdOptions": {"ModelName": model, "Lean": lean, "Inputs": inputs}})))
    return req_id


class ModelContextTest(ServerTestCase):
    def serve(self, hello: Dict[str, Any], args: Any = None) -> Client:
        self.write_model("counter.py", COUNTER)
        self.write_model("asker.py", ASKER)
        server = self.start_server(args=args)
        client = self.connect(server, hello=False)
        reply = client.request("hello", hello)
        self.assertEqual(reply["Code"], 0, reply)
        self.hello = reply["Result"]
        for name in ("counter", "asker"):
            self.assertEqual(client.request("addModel", {"ModelName": name, "ModelFile": f"{name}.py"})["Code"], 0)
        return client

    def raw_reply(self, client: Client, req_id: int) -> Tuple[bytes, Dict[str, Any]]:
        payload = client.read_frame()[1]
        reply = json.loads(payload)
        self.assertEqual(reply["Id"], req_id, reply)
        return payload, reply

    def test_state_changes_ride_on_the_reply_and_failed_messages_change_nothing(self) -> None:
        client = self.serve({"State": {"MaxBytes": 1000}})
        self.assertEqual(self.hello["State"], {"MaxBytes": 1000})
        req = batch(client, "counter", [{"key": "a"}, {"key": "a", "fail": True}, {"key": "b"}, {"key": "a"},
                                        {"key": "b", "drop": True}])
        payload, reply = self.raw_reply(client, req)
        keys = list(json.loads(payload, object_pairs_hook=lambda pairs: pairs))
        self.assertEqual([k for k, _ in keys], ["Cmd", "Id", "Code", "Errors", "Files", "State", "Result"])
        self.assertEqual([r and r["n"] for r in reply["Result"]], [1, None, 1, 2, 2])
        self.assertEqual(reply["Errors"][0][:2], [1, -2])
        # One entry per key, its last value; "b", made and deleted within the request, needs none.
        self.assertEqual(reply["State"], [["a", 2]])
        # A key that existed before the request and is deleted is a one-element entry.
        req = batch(client, "counter", [{"key": "a", "drop": True}])
        payload, reply = self.raw_reply(client, req)
        self.assertEqual(reply["State"], [["a"]])
        # A batch that writes nothing has no State field.
        req = batch(client, "counter", [{"key": "c", "fail_before": True}])
        payload, reply = self.raw_reply(client, req)
        self.assertNotIn(b'"State"', payload)

    def test_state_stands_before_result_in_every_reply_layout(self) -> None:
        # Clients split Result off the end without parsing: State must come before it in item batches
        # and executeModel replies too, not only in Lean ones.
        client = self.serve({"State": {}})
        req = batch(client, "counter", [{"key": "a"}, {"key": "a"}], lean=False)
        payload, reply = self.raw_reply(client, req)
        self.assertEqual([k for k, _ in json.loads(payload, object_pairs_hook=lambda pairs: pairs)],
                         ["Cmd", "Id", "Code", "State", "Result"])
        self.assertEqual(reply["State"], [["a", 2]])
        self.assertEqual([item["Result"]["n"] for item in reply["Result"]], [1, 2])
        req = client.next_id()
        client.send_raw(encode_frame(payload_of({"Cmd": "executeModel", "CmdVer": 1, "Id": req, "CmdOptions": {
            "ModelName": "counter", "InputDictionary": {"key": "b"}}})))
        payload, reply = self.raw_reply(client, req)
        self.assertEqual([k for k, _ in json.loads(payload, object_pairs_hook=lambda pairs: pairs)],
                         ["Cmd", "Id", "Code", "State", "Result"])
        self.assertEqual((reply["Code"], reply["State"], reply["Result"]["n"]), (0, [["b", 1]], 1))

    def test_restore_state_replaces_the_servers_state(self) -> None:
        client = self.serve({"State": {}})
        self.assertEqual(client.request("restoreState", {"States": {"counter": [["a", 41], ["x", {"deep": [1]}]]}})
                         ["Result"], {"Keys": 2})
        req = batch(client, "counter", [{"key": "a"}])
        _, reply = self.raw_reply(client, req)
        self.assertEqual(reply["Result"][0], {"key": "a", "n": 42, "keys": ["a", "x"]})
        bad = client.request("restoreState", {"States": {"counter": [["a"]]}})
        self.assertEqual((bad["Code"], bad["Error"]["Type"]), (-1, "BadOption"))

    def test_state_limit_fails_the_message_not_the_state(self) -> None:
        client = self.serve({"State": {"MaxBytes": 200}})
        req = batch(client, "counter", [{"key": "a"}, {"key": "a", "big": 500}, {"key": "a"}])
        _, reply = self.raw_reply(client, req)
        self.assertEqual([r and r["n"] for r in reply["Result"]], [1, None, 2])
        self.assertEqual(reply["Errors"][0][2]["Type"], "StateFullError")
        self.assertIn("maxStateBytes", reply["Errors"][0][2]["Message"])
        self.assertEqual(reply["State"], [["a", 2]])

    def test_without_state_in_hello_no_state_field(self) -> None:
        client = self.serve({})
        req = batch(client, "counter", [{"key": "a"}, {"key": "a"}])
        payload, reply = self.raw_reply(client, req)
        self.assertNotIn(b'"State"', payload)
        self.assertEqual([r["n"] for r in reply["Result"]], [1, 2])

    def test_host_requests_while_a_batch_runs(self) -> None:
        client = self.serve({"Host": {"TimeoutMs": 5000}})
        first = batch(client, "asker", [{"handler": "double", "payload": 21}, {"handler": "boom"}])
        # Pipelined behind it, before any answer: it must wait, not be answered in between.
        second = batch(client, "counter", [{"key": "z"}])
        frames: List[Dict[str, Any]] = []
        while len(frames) < 2:
            request = json.loads(client.read_frame()[1])
            self.assertEqual((request["Cmd"], request["Id"], request["Code"]), ("hostRequest", first, 3))
            frames.append(request)
            if request["Name"] == "double":
                answer = {"Cmd": "hostReply", "CmdVer": 1, "Seq": request["Seq"], "Code": 0,
                          "Result": request["Payload"] * 2}
            else:
                answer = {"Cmd": "hostReply", "CmdVer": 1, "Seq": request["Seq"], "Code": -5,
                          "Error": {"Type": "HandlerError", "Message": "it broke"}}
            client.send_raw(encode_frame(payload_of(answer)))
        self.assertEqual([(f["Kind"], f["Index"]) for f in frames], [("call", 0), ("call", 1)])
        _, reply = self.raw_reply(client, first)
        self.assertEqual(reply["Result"], [{"answer": 42}, {"error": "it broke", "type": "HandlerError"}])
        _, reply = self.raw_reply(client, second)
        self.assertEqual(reply["Result"][0]["n"], 1)

    def test_a_request_times_out_and_a_late_answer_is_dropped(self) -> None:
        client = self.serve({"Host": {}})
        first = batch(client, "asker", [{"handler": "slow", "timeout": 0.2}])
        request = json.loads(client.read_frame()[1])
        self.assertEqual(request["TimeoutMs"], 200)
        _, reply = self.raw_reply(client, first)
        self.assertEqual(reply["Result"][0]["type"], "HostRequestTimeout")
        # The late answer is ignored; the next request still gets its reply.
        client.send_raw(encode_frame(payload_of({"Cmd": "hostReply", "CmdVer": 1, "Seq": request["Seq"],
                                                 "Code": 0, "Result": 1})))
        self.assertEqual(client.request("serverStatus")["Code"], 0)

    def test_old_clients_never_see_a_host_request(self) -> None:
        client = self.serve({})
        req = batch(client, "asker", [{"handler": "double", "payload": 1}])
        _, reply = self.raw_reply(client, req)
        self.assertEqual(reply["Result"][0]["type"], "HostRequestsDisabled")

    def test_a_request_over_half_the_frame_limit_is_refused_before_it_is_sent(self) -> None:
        client = self.serve({"Host": {}}, args=["--max-frame-bytes", "8192"])
        req = batch(client, "asker", [{"handler": "big", "payload": "x" * 5000}, {"handler": "small", "payload": 1}])
        request = json.loads(client.read_frame()[1])
        # The first frame the client sees is the second message's request: the big one never left.
        self.assertEqual((request["Cmd"], request["Name"], request["Index"]), ("hostRequest", "small", 1))
        client.send_raw(encode_frame(payload_of({"Cmd": "hostReply", "CmdVer": 1, "Seq": request["Seq"],
                                                 "Code": 0, "Result": 2})))
        _, reply = self.raw_reply(client, req)
        self.assertEqual(reply["Result"][0]["type"], "HostRequestTooLarge")
        self.assertEqual(reply["Result"][1], {"answer": 2})

    def test_an_execute_batch_call_is_one_unit_for_the_state(self) -> None:
        self.write_model("vec.py", VECTORISED)
        client = self.serve({"State": {}})
        self.assertEqual(client.request("addModel", {"ModelName": "vec", "ModelFile": "vec.py"})["Code"], 0)
        # The call raises: its writes go, and the batch runs one message at a time (the culprit alone fails).
        req = batch(client, "vec", [{"key": "a"}, {"key": "a", "boom": True}, {"key": "a"}])
        _, reply = self.raw_reply(client, req)
        self.assertEqual(reply["Result"], [{"n": 1, "batch": False}, None, {"n": 2, "batch": False}])
        self.assertEqual(reply["State"], [["a", 2]])
        req = batch(client, "vec", [{"key": "a"}, {"key": "b"}])
        _, reply = self.raw_reply(client, req)
        self.assertEqual(reply["Result"], [{"n": 3, "batch": True}, {"n": 1, "batch": True}])
        self.assertEqual(reply["State"], [["a", 3], ["b", 1]])
