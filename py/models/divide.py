"""Sample model: the quotient of two fields (a / b). Division by zero raises ZeroDivisionError,
which the server reports as a model error (Code -2) for that message only.

Options (all optional):
  field_a  name of the dividend        (default "a")
  field_b  name of the divisor         (default "b")
  out      name of the output field    (default "quotient")

{"key": "acct-1", "a": 1, "b": 2, "seq": 7}  ->  {"quotient": 0.5}
"""
from typing import Any, Dict

from pystage import Model


class Divide(Model):
    def __init__(self, options: Dict[str, Any]) -> None:
        super().__init__(options)
        self.field_a = str(options.get("field_a", "a"))
        self.field_b = str(options.get("field_b", "b"))
        self.out = str(options.get("out", "quotient"))

    def execute(self, msg: Dict[str, Any]) -> Dict[str, Any]:
        return {self.out: msg[self.field_a] / msg[self.field_b]}
