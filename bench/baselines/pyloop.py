#!/usr/bin/env python3
"""Baseline A: the plain in-process Python loop a user would write instead of pystage.

stdin JSON lines -> json.loads -> model.execute -> json.dumps -> stdout JSON lines, one process.
"""
import json
import sys
from typing import Any, TextIO

from load_model import load_model, model_arguments


def run_lines(model: Any, source: TextIO, sink: TextIO) -> None:
    """One output line per message the model answers; None means no output."""
    execute = model.execute
    write = sink.write
    loads = json.loads
    dumps = json.dumps
    for line in source:
        result = execute(loads(line))
        if result is not None:
            write(dumps(result) + "\n")
    sink.flush()


def main() -> int:
    args = model_arguments("Baseline A: the in-process Python loop").parse_args()
    run_lines(load_model(args.model_file, args.class_name, args.py_root, args.init_file), sys.stdin, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
