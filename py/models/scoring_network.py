"""Sample model with numpy (needs numpy installed): a small scoring network, 16 features -> 64 -> 64 -> 1
(ReLU, ReLU, sigmoid), written the two ways a data scientist would write it.

  ScoringNetwork       execute(msg): one message at a time
  BatchScoringNetwork  execute_batch(msgs): the whole batch in one matrix product per layer; it keeps
                       the inherited execute, so a batch holding a bad message is re-run one message at a
                       time and only that message fails

The weights come from init(path), i.e. `--init NAME=FILE`: a JSON file
{"w1": 16x64, "b1": [64], "w2": 64x64, "b2": [64], "w3": [64], "b3": number}; scoring_network.weights.json
next to this file is one (made by make_scoring_weights.py).

Options (all optional):
  field  the message field holding the 16 features  (default "x")
  out    name of the output field                    (default "score")

{"key": "acct-1", "x": [0.1, -0.4, ... 16 numbers]}  ->  {"score": 0.73...}

    pystage run --model score=py/models/scoring_network.py:BatchScoringNetwork \\
                --init score=py/models/scoring_network.weights.json < messages.jsonl
"""
import json
from typing import Any, Dict, List, Optional

import numpy as np

from pystage import Model

FEATURES = 16


class ScoringNetwork(Model):
    def __init__(self, options: Dict[str, Any]) -> None:
        super().__init__(options)
        self.field = str(options.get("field", "x"))
        self.out = str(options.get("out", "score"))
        self.layers: Optional[List[np.ndarray]] = None

    def init(self, data_path: str) -> None:
        with open(data_path, encoding="utf-8") as handle:
            weights = json.load(handle)
        w1, w2 = np.asarray(weights["w1"], dtype=np.float64), np.asarray(weights["w2"], dtype=np.float64)
        w3 = np.asarray(weights["w3"], dtype=np.float64)
        if w1.shape[0] != FEATURES or w2.shape[0] != w1.shape[1] or w3.shape != (w2.shape[1],):
            raise ValueError(f"{data_path}: weights of shapes {w1.shape}, {w2.shape}, {w3.shape} do not make a "
                             f"{FEATURES} -> n -> m -> 1 network")
        self.layers = [w1, np.asarray(weights["b1"], dtype=np.float64), w2,
                       np.asarray(weights["b2"], dtype=np.float64), w3, np.float64(weights["b3"])]
        self.context.logger.info("weights loaded", extra={"hidden": [int(w1.shape[1]), int(w2.shape[1])]})

    def score(self, x: np.ndarray) -> np.ndarray:
        """Scores of one row (a scalar) or of a matrix of rows (a vector)."""
        if self.layers is None:
            raise RuntimeError("no weights loaded: start the model with --init NAME=PATH/scoring_network.weights.json")
        w1, b1, w2, b2, w3, b3 = self.layers
        h = np.maximum(x @ w1 + b1, 0.0)
        h = np.maximum(h @ w2 + b2, 0.0)
        return 1.0 / (1.0 + np.exp(-(h @ w3 + b3)))

    def features(self, msg: Dict[str, Any]) -> List[float]:
        x = msg[self.field]
        if not isinstance(x, list) or len(x) != FEATURES:
            raise ValueError(f"field {self.field!r} must be a list of {FEATURES} numbers")
        return x

    def execute(self, msg: Dict[str, Any]) -> Dict[str, Any]:
        # A numpy float64 scalar: the server writes it as a plain number.
        return {self.out: self.score(np.asarray(self.features(msg), dtype=np.float64))}


class BatchScoringNetwork(ScoringNetwork):
    def execute_batch(self, msgs: List[Dict[str, Any]]) -> List[Optional[Dict[str, Any]]]:
        x = np.asarray([self.features(msg) for msg in msgs], dtype=np.float64)
        out = self.out
        return [{out: score} for score in self.score(x).tolist()]
