"""Real numpy through a real server: what numpy returns is encoded per the type table, and the sample scoring
network scores the same in both styles as a plain-Python reference of the same network.

The server runs under PYSTAGE_NUMPY_PYTHON when set (.ci/run sets it when the default python3 lacks numpy
and Debian's python3-numpy had to be installed), else this interpreter. numpy missing is a failure, never
a skip."""
import json
import math
import os
import random
import subprocess
import sys
from typing import Any, Dict, List

from tests.server_fixture import Client, ServerTestCase

NUMPY_PYTHON = os.environ.get("PYSTAGE_NUMPY_PYTHON") or sys.executable
SAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models")
WEIGHTS = os.path.join(SAMPLES, "scoring_network.weights.json")

NUMPY_OUTPUTS = '''
import datetime

import numpy as np


class Numeric:
    """Returns what numpy code returns, unconverted."""
    def execute(self, msg):
        x = np.asarray(msg["x"], dtype=np.float64)
        w = np.arange(len(x), dtype=np.float64)
        kind = msg.get("kind", "issue")
        if kind == "issue":
            return {"score": x @ w, "label": np.int64(1), "vec": x * 2, "f32": np.float32(1.5),
                    "flag": np.bool_(True)}
        if kind == "more":
            return {"i8": np.int8(-3), "u64": np.uint64(2**64 - 1), "matrix": np.eye(2, dtype=np.int32),
                    "pair": (np.int16(1), np.float16(0.5)), "when": np.datetime64("2026-11-30T07:05:03"),
                    "s": np.str_("text"), "zero_d": np.array(4.25), "big": np.int64(2**62 + 1),
                    "ns": np.datetime64("2026-11-30T07:05:03.123456789"),
                    "days": np.array(["2026-11-30", "2026-12-01"], dtype="datetime64[D]")}
        if kind == "nan":
            return {"mean": np.mean(np.array([np.nan, 1.0])), "row": np.array([1.0, np.inf])}
        return {"set": set(np.array([1, 2]).tolist())}
'''


def reference_scores(rows: List[List[float]]) -> List[float]:
    """The scoring network in plain Python, straight from the weights file (independent of numpy and the model)."""
    with open(WEIGHTS, encoding="utf-8") as handle:
        w = json.load(handle)

    def dense(x: List[float], matrix: List[List[float]], bias: List[float]) -> List[float]:
        return [max(0.0, sum(x[i] * matrix[i][j] for i in range(len(x))) + bias[j]) for j in range(len(bias))]

    scores = []
    for x in rows:
        h = dense(dense(x, w["w1"], w["b1"]), w["w2"], w["b2"])
        z = sum(a * b for a, b in zip(h, w["w3"])) + w["b3"]
        scores.append(1.0 / (1.0 + math.exp(-z)))
    return scores


class NumpyThroughServerTest(ServerTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        found = subprocess.run([NUMPY_PYTHON, "-c", "import numpy"], capture_output=True, text=True)
        if found.returncode != 0:
            raise AssertionError(f"{NUMPY_PYTHON} cannot import numpy, which these tests need: install it (Debian: "
                                 f"apt-get install python3-numpy, as .ci/run does) or point PYSTAGE_NUMPY_PYTHON at "
                                 f"an interpreter that has it.\n{found.stderr}")

    def serve(self, python_path: str, *args: str) -> Client:
        return self.connect(self.start_server(python_path=python_path, python=NUMPY_PYTHON,
                                              args=["--spool-dir", self.models, *args]))

    def run_one(self, client: Client, name: str, msg: Dict[str, Any]) -> Dict[str, Any]:
        return client.request("executeModel", {"ModelName": name, "InputDictionary": msg})

    def test_numpy_values_are_encoded_per_the_type_table(self) -> None:
        self.write_model("numeric.py", NUMPY_OUTPUTS)
        client = self.serve(self.models)
        self.assertCode(client.request("addModel", {"ModelName": "n", "ModelFile": "numeric.py"}), 0)
        reply = self.run_one(client, "n", {"x": [1.0, 2.0, 3.0]})
        self.assertCode(reply, 0)
        self.assertEqual(reply["Result"], {"score": 8.0, "label": 1, "vec": [2.0, 4.0, 6.0], "f32": 1.5, "flag": True})
        reply = client.request("executeBatch", {"ModelName": "n", "Lean": True,
                                                "Inputs": [{"x": [1.0, 2.0, 3.0], "kind": "more"}]})
        self.assertEqual(reply["Errors"], [])
        self.assertEqual(reply["Result"], [{
            "i8": -3, "u64": 2**64 - 1, "matrix": [[1, 0], [0, 1]], "pair": [1, 0.5], "when": "2026-11-30T07:05:03",
            "s": "text", "zero_d": 4.25, "big": 2**62 + 1, "ns": "2026-11-30T07:05:03.123456789",
            "days": ["2026-11-30", "2026-12-01"]}])
        reply = self.run_one(client, "n", {"x": [1.0], "kind": "nan"})
        self.assertCode(reply, -2, "BadModelOutput")
        self.assertIn("output['mean']: nan is not valid JSON", reply["Error"]["Message"])
        reply = self.run_one(client, "n", {"x": [1.0], "kind": "set"})
        self.assertCode(reply, -2, "BadModelOutput")

    def test_nan_as_null_with_numpy(self) -> None:
        self.write_model("numeric.py", NUMPY_OUTPUTS)
        client = self.serve(self.models, "--nan-as-null")
        self.assertCode(client.request("addModel", {"ModelName": "n", "ModelFile": "numeric.py"}), 0)
        reply = self.run_one(client, "n", {"x": [1.0], "kind": "nan"})
        self.assertCode(reply, 0)
        self.assertEqual(reply["Result"], {"mean": None, "row": [1.0, None]})

    def test_the_sample_scoring_network_in_both_styles(self) -> None:
        client = self.serve(SAMPLES)
        for name, class_name in (("one", "ScoringNetwork"), ("vec", "BatchScoringNetwork")):
            reply = client.request("addModel", {"ModelName": name, "ModelFile": "scoring_network.py",
                                                "ClassName": class_name})
            self.assertCode(reply, 0)
            self.assertEqual(reply["Result"]["Vectorised"], name == "vec")
            self.assertCode(client.request("initModel", {"ModelName": name, "DataFile": WEIGHTS}), 0)
        rng = random.Random(7)
        rows = [[round(rng.uniform(-1, 1), 4) for _ in range(16)] for _ in range(40)]
        inputs: List[Any] = [{"key": f"k{i}", "x": row} for i, row in enumerate(rows)]
        inputs[5] = {"key": "bad", "x": [1.0, 2.0]}  # a message the network cannot score
        expected = reference_scores(rows)
        for name in ("one", "vec"):
            with self.subTest(model=name):
                reply = client.request("executeBatch", {"ModelName": name, "Inputs": inputs, "Lean": True})
                self.assertCode(reply, 0)
                self.assertEqual([(i, e["Type"]) for i, _, e in reply["Errors"]], [(5, "ValueError")])
                self.assertIn("must be a list of 16 numbers", reply["Errors"][0][2]["Message"])
                for i, (got, want) in enumerate(zip(reply["Result"], expected)):
                    if i == 5:
                        self.assertIsNone(got)
                    else:
                        self.assertAlmostEqual(got["score"], want, places=9)
        # Scores are spread out (the weights are not degenerate), and each is a probability.
        self.assertGreater(max(expected) - min(expected), 0.05)
        reply = self.run_one(client, "vec", inputs[0])
        self.assertCode(reply, 0)
        self.assertAlmostEqual(reply["Result"]["score"], expected[0], places=9)

    def test_the_scoring_network_without_weights_says_what_to_do(self) -> None:
        client = self.serve(SAMPLES)
        self.assertCode(client.request("addModel", {"ModelName": "vec", "ModelFile": "scoring_network.py",
                                                    "ClassName": "BatchScoringNetwork"}), 0)
        reply = self.run_one(client, "vec", {"x": [0.0] * 16})
        self.assertCode(reply, -2, "RuntimeError")
        self.assertIn("--init", reply["Error"]["Message"])
