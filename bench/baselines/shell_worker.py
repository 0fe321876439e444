#!/usr/bin/env python3
"""Baseline B's Python side: the script npm python-shell drives in JSON mode.

python-shell writes one JSON message per stdin line and parses one JSON value per stdout line;
the loop is pyloop.py's, so baselines A and B differ only in who feeds and reads the pipes.
"""
import sys

from load_model import load_model, model_arguments
from pyloop import run_lines


def main() -> int:
    args = model_arguments("Baseline B: the python-shell worker").parse_args()
    run_lines(load_model(args.model_file, args.class_name, args.py_root), sys.stdin, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
