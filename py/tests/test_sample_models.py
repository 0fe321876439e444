"""The sample models shipped in py/models, through a live server, with their default and custom options."""
import json
import os
import random
from typing import Any, Dict, Optional

from tests.server_fixture import ServerTestCase

SAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models")
MESSAGE = {"key": "acct-1", "a": 1, "b": 2, "seq": 7}


class SampleModelsTest(ServerTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.server = self.start_server(python_path=SAMPLES, args=["--spool-dir", self.models])
        self.client = self.connect(self.server)

    def add(self, name: str, file: str, options: Optional[Dict[str, Any]] = None) -> None:
        reply = self.client.request("addModel", {"ModelName": name, "ModelFile": file}, options)
        self.assertCode(reply, 0)

    def run_one(self, name: str, msg: Dict[str, Any]) -> Dict[str, Any]:
        return self.client.request("executeModel", {"ModelName": name, "InputDictionary": msg})

    def test_arithmetic_with_default_options(self) -> None:
        for name, file, expected in (("add", "add.py", {"sum": 3}),
                                     ("subtract", "subtract.py", {"difference": -1}),
                                     ("multiply", "multiply.py", {"product": 2}),
                                     ("divide", "divide.py", {"quotient": 0.5})):
            with self.subTest(model=name):
                self.add(name, file)
                reply = self.run_one(name, MESSAGE)
                self.assertCode(reply, 0)
                self.assertEqual(reply["Result"], expected)

    def test_arithmetic_with_options(self) -> None:
        self.add("add", "add.py", {"field_a": "x", "field_b": "y", "out": "total"})
        self.assertEqual(self.run_one("add", {"x": 2.5, "y": 4})["Result"], {"total": 6.5})

    def test_divide_by_zero_raises(self) -> None:
        self.add("divide", "divide.py")
        reply = self.run_one("divide", {"a": 1, "b": 0})
        self.assertCode(reply, -2, "ZeroDivisionError")
        self.assertIn("divide.py", reply["Error"]["Traceback"])

    def test_filter(self) -> None:
        self.add("filter", "threshold_filter.py", {"field": "a", "min": 2})
        reply = self.client.request("executeBatch", {"ModelName": "filter", "Inputs": [
            {"a": 1}, {"a": 2, "k": "x"}, {"b": 5}, {"a": 9}]})
        self.assertEqual(reply["Result"], [
            {"Code": 1, "Result": None}, {"Code": 0, "Result": {"a": 2, "k": "x"}},
            {"Code": 1, "Result": None}, {"Code": 0, "Result": {"a": 9}}])
        self.add("default_filter", "threshold_filter.py")
        self.assertCode(self.run_one("default_filter", MESSAGE), 0)
        self.assertEqual(self.run_one("default_filter", {"a": -1})["Code"], 1)

    def test_running_total_per_key(self) -> None:
        self.add("total", "running_total.py")
        self.assertEqual(self.run_one("total", MESSAGE)["Result"], {"key": "acct-1", "total": 1})
        rng = random.Random(5)
        messages = [{"key": f"k{rng.randrange(4)}", "a": rng.randrange(100)} for _ in range(500)]
        expected = []
        totals = {"acct-1": 1}
        for msg in messages:
            totals[msg["key"]] = totals.get(msg["key"], 0) + msg["a"]
            expected.append({"key": msg["key"], "total": totals[msg["key"]]})
        got = []
        for start in range(0, len(messages), 128):
            reply = self.client.request("executeBatch", {"ModelName": "total", "Inputs": messages[start:start + 128]})
            got += [item["Result"] for item in reply["Result"]]
        self.assertEqual(got, expected)

    def test_running_total_init_from_a_data_file(self) -> None:
        self.add("total", "running_total.py", {"field": "b", "out": "sum_b"})
        data = os.path.join(self.models, "start.json")
        with open(data, "w") as handle:
            json.dump({"acct-1": 100}, handle)
        self.assertCode(self.client.request("initModel", {"ModelName": "total", "DataFile": data}), 0)
        self.assertEqual(self.run_one("total", MESSAGE)["Result"], {"key": "acct-1", "sum_b": 102})
