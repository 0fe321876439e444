"""Sample model: the sum of two fields.

Options (all optional):
  field_a  name of the first operand   (default "a")
  field_b  name of the second operand  (default "b")
  out      name of the output field    (default "sum")

{"key": "acct-1", "a": 1, "b": 2, "seq": 7}  ->  {"sum": 3}
"""
from typing import Any, Dict

from pystage import Model


class Add(Model):
    def __init__(self, options: Dict[str, Any]) -> None:
        super().__init__(options)
        self.field_a = str(options.get("field_a", "a"))
        self.field_b = str(options.get("field_b", "b"))
        self.out = str(options.get("out", "sum"))

    def execute(self, msg: Dict[str, Any]) -> Dict[str, Any]:
        return {self.out: msg[self.field_a] + msg[self.field_b]}
