#!/usr/bin/env python3
"""Writes weights for scoring_network.py: `python3 py/models/make_scoring_weights.py OUT.json [--seed N]`.

Standard library only (so it runs where numpy is missing too). The weights are random, scaled like a
trained network's (He initialisation), and a function of the seed alone: the shipped
scoring_network.weights.json is this script's output for the default seed.
"""
import argparse
import json
import math
import random
from typing import Any, Dict, List

SHAPE = (16, 64, 64, 1)


def make_weights(seed: int) -> Dict[str, Any]:
    """{"w1": 16x64, "b1": 64, "w2": 64x64, "b2": 64, "w3": 64, "b3": number}, rounded to 6 decimals."""
    rng = random.Random(seed)

    def matrix(rows: int, cols: int) -> List[List[float]]:
        scale = math.sqrt(2.0 / rows)
        return [[round(rng.gauss(0.0, scale), 6) for _ in range(cols)] for _ in range(rows)]

    def vector(size: int) -> List[float]:
        return [round(rng.uniform(-0.1, 0.1), 6) for _ in range(size)]

    inputs, hidden1, hidden2, _ = SHAPE
    return {"w1": matrix(inputs, hidden1), "b1": vector(hidden1),
            "w2": matrix(hidden1, hidden2), "b2": vector(hidden2),
            "w3": [row[0] for row in matrix(hidden2, 1)], "b3": vector(1)[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the JSON file to write")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(make_weights(args.seed), handle, separators=(",", ":"))
        handle.write("\n")


if __name__ == "__main__":
    main()
