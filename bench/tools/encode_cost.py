#!/usr/bin/env python3
"""Encode cost per output: `python3 bench/tools/encode_cost.py` (numpy rows only when numpy is installed).

The server's plain JSON encoder (protocol.encode_json, what every output went through before the type
table) against OutputEncoder.encode (what a single executeModel output goes through now), on a plain
output; a whole Lean batch of plain outputs, whose path did not change; and outputs that need converting.
"""
import os
import sys
import timeit
from datetime import date
from decimal import Decimal

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(_REPO, "py"))

from pystage.output_encoding import OutputEncoder  # noqa: E402
from pystage.protocol import encode_json  # noqa: E402


def per_call_us(fn, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=7)) / number * 1e6


def main() -> None:
    encode = OutputEncoder().encode
    plain = {"sum": 12345, "key": "acct-17", "score": 0.123456789, "label": "ok"}
    batch = [dict(plain, seq=i) for i in range(1024)]
    rows = [
        ("plain dict, encode_json (before)", per_call_us(lambda: encode_json(plain).encode("utf-8"), 200_000)),
        ("plain dict, OutputEncoder.encode (now)", per_call_us(lambda: encode(plain), 200_000)),
        ("Lean batch of 1,024 plain dicts, per output (unchanged)",
         per_call_us(lambda: encode_json(batch).encode("utf-8"), 200) / len(batch)),
        ("dict with a tuple, a date and a Decimal (converted)",
         per_call_us(lambda: encode({"pair": (1, 2), "day": date(2026, 11, 30), "price": Decimal("0.10")}), 50_000)),
    ]
    try:
        import numpy as np
    except ImportError:
        np = None
    if np is not None:
        issue = {"score": np.float64(3.5), "label": np.int64(1), "vec": np.arange(16, dtype=np.float64),
                 "f32": np.float32(1.5), "flag": np.bool_(True)}
        rows.append(("the issue's numpy dict (converted)", per_call_us(lambda: encode(issue), 50_000)))
    for label, us in rows:
        print(f"{label:<58}{us:8.3f} µs")


if __name__ == "__main__":
    main()
