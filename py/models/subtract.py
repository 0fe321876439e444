"""Sample model: the difference of two fields (a - b).

Options (all optional):
  field_a  name of the minuend         (default "a")
  field_b  name of the subtrahend      (default "b")
  out      name of the output field    (default "difference")

{"key": "acct-1", "a": 1, "b": 2, "seq": 7}  ->  {"difference": -1}
"""
from typing import Any, Dict

from pystage import Model


class Subtract(Model):
    def __init__(self, options: Dict[str, Any]) -> None:
        super().__init__(options)
        self.field_a = str(options.get("field_a", "a"))
        self.field_b = str(options.get("field_b", "b"))
        self.out = str(options.get("out", "difference"))

    def execute(self, msg: Dict[str, Any]) -> Dict[str, Any]:
        return {self.out: msg[self.field_a] - msg[self.field_b]}
