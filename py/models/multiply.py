"""Sample model: the product of two fields.

Options (all optional):
  field_a  name of the first factor    (default "a")
  field_b  name of the second factor   (default "b")
  out      name of the output field    (default "product")

{"key": "acct-1", "a": 1, "b": 2, "seq": 7}  ->  {"product": 2}
"""
from typing import Any, Dict

from pystage import Model


class Multiply(Model):
    def __init__(self, options: Dict[str, Any]) -> None:
        super().__init__(options)
        self.field_a = str(options.get("field_a", "a"))
        self.field_b = str(options.get("field_b", "b"))
        self.out = str(options.get("out", "product"))

    def execute(self, msg: Dict[str, Any]) -> Dict[str, Any]:
        return {self.out: msg[self.field_a] * msg[self.field_b]}
