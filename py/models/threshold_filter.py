"""Sample model: a filter. Passes a message through when a field reaches a threshold; otherwise
returns None, which the server reports as "no output" (Code 1).

Options (all optional):
  field    name of the field compared  (default "a")
  min      smallest value that passes  (default 0)

{"key": "acct-1", "a": 1, "b": 2, "seq": 7}  ->  the same message (a >= 0)
{"key": "acct-1", "a": -5, "b": 2}           ->  None
"""
from typing import Any, Dict, Optional

from pystage import Model


class ThresholdFilter(Model):
    def __init__(self, options: Dict[str, Any]) -> None:
        super().__init__(options)
        self.field = str(options.get("field", "a"))
        self.min = options.get("min", 0)

    def execute(self, msg: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        value = msg.get(self.field)
        if value is None or value < self.min:
            return None
        return msg
