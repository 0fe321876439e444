"""execute_batch through a live server: one call per batch, order, None items, wrong shapes, a raising batch
with and without execute, Batch: false, and a vectorised-only model under executeModel."""
import json
from typing import Any, Dict, List

from tests.server_fixture import ServerTestCase

VECTORISED = '''
import json
import os


def log_call(kind, msgs):
    # Every call the model gets, appended to a file next to it: how the tests see what ran how.
    with open(os.path.join(os.path.dirname(__file__), "calls.jsonl"), "a") as handle:
        handle.write(json.dumps({"kind": kind, "seqs": [m.get("seq") for m in msgs]}) + "\\n")


def answer(msg):
    action = msg.get("do", "double")
    if action == "none":
        return None
    if action == "raise":
        raise ValueError("message %s cannot be scored" % msg.get("seq"))
    if action == "list":
        return [1]
    return {"seq": msg.get("seq"), "double": msg["x"] * 2}


class Both:
    """Vectorised, with execute for the fallback; a batch holding {"do": "raise"} makes execute_batch raise."""
    def execute_batch(self, msgs):
        log_call("batch", msgs)
        return [answer(msg) for msg in msgs]

    def execute(self, msg):
        log_call("one", [msg])
        return answer(msg)


class BatchOnly:
    """Only execute_batch; {"shape": ...} in the first message asks for a wrongly shaped result."""
    def execute_batch(self, msgs):
        log_call("batch", msgs)
        shape = msgs[0].get("shape")
        if shape == "short":
            return [answer(msg) for msg in msgs[1:]]
        if shape == "long":
            return [answer(msg) for msg in msgs] + [None]
        if shape == "tuple":
            return tuple(answer(msg) for msg in msgs)
        if shape == "none":
            return None
        return [answer(msg) for msg in msgs]
'''


class VectorisedBatchTest(ServerTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.write_model("vectorised.py", VECTORISED)
        self.client = self.connect(self.start_server())

    def add(self, name: str, class_name: str, **options: Any) -> Dict[str, Any]:
        reply = self.client.request("addModel", {"ModelName": name, "ModelFile": "vectorised.py",
                                                 "ClassName": class_name, **options})
        self.assertCode(reply, 0)
        return reply["Result"]

    def calls(self) -> List[Dict[str, Any]]:
        try:
            with open(f"{self.models}/calls.jsonl", encoding="utf-8") as handle:
                found = [json.loads(line) for line in handle]
        except FileNotFoundError:
            return []
        open(f"{self.models}/calls.jsonl", "w").close()
        return found

    def lean(self, name: str, inputs: List[Any]) -> Dict[str, Any]:
        reply = self.client.request("executeBatch", {"ModelName": name, "Inputs": inputs, "Lean": True})
        self.assertCode(reply, 0)
        return reply

    def errors(self, reply: Dict[str, Any]) -> List[Any]:
        return [(index, code, error["Type"]) for index, code, error in reply["Errors"]]

    def test_one_call_per_batch_in_order_with_none_items(self) -> None:
        self.assertTrue(self.add("v", "Both")["Vectorised"])
        inputs = [{"seq": 0, "x": 1}, {"seq": 1, "do": "none"}, "not a message", {"seq": 3, "x": 4},
                  {"seq": 4, "do": "list"}, {"seq": 5, "x": -1}]
        reply = self.lean("v", inputs)
        self.assertEqual(reply["Result"], [{"seq": 0, "double": 2}, None, None, {"seq": 3, "double": 8}, None,
                                           {"seq": 5, "double": -2}])
        self.assertEqual(self.errors(reply), [(2, -1, "BadInput"), (4, -2, "BadModelOutput")])
        self.assertIn("each item of execute_batch() must return a dict or None, not list",
                      reply["Errors"][1][2]["Message"])
        # One vectorised call with the messages only, in order; nothing one at a time.
        self.assertEqual(self.calls(), [{"kind": "batch", "seqs": [0, 1, 3, 4, 5]}])

    def test_items_reply_format_too(self) -> None:
        self.add("v", "Both")
        reply = self.client.request("executeBatch", {"ModelName": "v", "Inputs": [{"seq": 0, "x": 2}, {"do": "none"}]})
        self.assertEqual(reply["Result"], [{"Code": 0, "Result": {"seq": 0, "double": 4}}, {"Code": 1, "Result": None}])

    def test_a_raising_batch_with_execute_reruns_one_at_a_time(self) -> None:
        self.add("v", "Both")
        inputs = [{"seq": 0, "x": 1}, {"seq": 1, "do": "raise"}, {"seq": 2, "x": 3}, {"seq": 3, "do": "none"}]
        reply = self.lean("v", inputs)
        self.assertEqual(reply["Result"], [{"seq": 0, "double": 2}, None, {"seq": 2, "double": 6}, None])
        self.assertEqual(self.errors(reply), [(1, -2, "ValueError")])
        self.assertEqual(reply["Errors"][0][2]["Message"], "message 1 cannot be scored")
        self.assertEqual(self.calls(), [{"kind": "batch", "seqs": [0, 1, 2, 3]},
                                        *({"kind": "one", "seqs": [seq]} for seq in range(4))])
        status = self.client.request("serverStatus")["Result"]["Models"][0]
        self.assertEqual((status["Executed"], status["Errors"]), (4, 1))

    def test_a_raising_batch_without_execute_fails_every_message(self) -> None:
        self.assertTrue(self.add("b", "BatchOnly")["Vectorised"])
        reply = self.lean("b", [{"seq": 0, "x": 1}, {"seq": 1, "do": "raise"}, "not a message", {"seq": 3, "x": 2}])
        self.assertEqual(reply["Result"], [None] * 4)
        self.assertEqual(self.errors(reply), [(0, -2, "ValueError"), (1, -2, "ValueError"), (2, -1, "BadInput"),
                                              (3, -2, "ValueError")])
        self.assertEqual(reply["Errors"][0][2]["Message"], "message 1 cannot be scored")
        self.assertIn("vectorised.py", reply["Errors"][0][2]["Traceback"])
        self.assertEqual(self.calls(), [{"kind": "batch", "seqs": [0, 1, 3]}])

    def test_wrongly_shaped_results_fail_the_batch_as_bad_model_output(self) -> None:
        self.add("b", "BatchOnly")
        for shape, problem in (("short", "returned 2 items for 3 messages"), ("long", "returned 4 items for 3 messages"),
                               ("tuple", "must return a list (one dict or None per message), not tuple"),
                               ("none", "must return a list (one dict or None per message), not NoneType")):
            with self.subTest(shape=shape):
                reply = self.lean("b", [{"seq": 0, "x": 1, "shape": shape}, {"seq": 1, "x": 2}, {"seq": 2, "x": 3}])
                self.assertEqual(reply["Result"], [None] * 3)
                self.assertEqual(self.errors(reply), [(i, -2, "BadModelOutput") for i in range(3)])
                self.assertIn(problem, reply["Errors"][0][2]["Message"])
        # The next batch is fine: the model and the server go on.
        self.assertEqual(self.lean("b", [{"seq": 9, "x": 5}])["Result"], [{"seq": 9, "double": 10}])

    def test_batch_false_runs_one_at_a_time(self) -> None:
        self.assertFalse(self.add("v", "Both", Batch=False)["Vectorised"])
        reply = self.lean("v", [{"seq": 0, "x": 1}, {"seq": 1, "x": 2}])
        self.assertEqual(reply["Result"], [{"seq": 0, "double": 2}, {"seq": 1, "double": 4}])
        self.assertEqual(self.calls(), [{"kind": "one", "seqs": [0]}, {"kind": "one", "seqs": [1]}])
        # updateModel keeps the setting unless it says otherwise.
        self.assertFalse(self.client.request("updateModel", {"ModelName": "v"})["Result"]["Vectorised"])
        self.assertTrue(self.client.request("updateModel", {"ModelName": "v", "Batch": True})["Result"]["Vectorised"])
        self.assertCode(self.client.request("addModel", {"ModelName": "w", "ModelFile": "vectorised.py",
                                                         "ClassName": "Both", "Batch": "no"}), -1, "BadOption")

    def test_a_vectorised_only_model_answers_execute_model_as_a_batch_of_one(self) -> None:
        self.add("b", "BatchOnly")
        reply = self.client.request("executeModel", {"ModelName": "b", "InputDictionary": {"seq": 7, "x": 21}})
        self.assertCode(reply, 0)
        self.assertEqual(reply["Result"], {"seq": 7, "double": 42})
        reply = self.client.request("executeModel", {"ModelName": "b", "InputDictionary": {"x": 1, "shape": "long"}})
        self.assertCode(reply, -2, "BadModelOutput")
        self.assertIn("returned 2 items for 1 messages", reply["Error"]["Message"])
        self.assertEqual([call["kind"] for call in self.calls()], ["batch", "batch"])

    def test_a_class_with_only_execute_batch_is_found_without_class_name(self) -> None:
        self.write_model("only.py", '''
            class Scorer:
                def execute_batch(self, msgs):
                    return [{"n": len(msgs)} for _ in msgs]
        ''')
        self.assertCode(self.client.request("addModel", {"ModelName": "o", "ModelFile": "only.py"}), 0)
        self.assertEqual(self.lean("o", [{}, {}, {}])["Result"], [{"n": 3}] * 3)


