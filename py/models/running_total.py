"""Sample model with state: a running total of one field per key. Its output depends on every earlier
message with the same key, so it shows whether per-key order was kept. init(path) may load starting
totals from a JSON file {"<key>": <total>, ...}.

Options (all optional):
  key_field  field that names the key   (default "key")
  field      field that is added up     (default "a")
  out        name of the output field   (default "total")

{"key": "acct-1", "a": 1, "b": 2, "seq": 7}  ->  {"key": "acct-1", "total": 1}, then 2, 3, ... for more
"""
import json
from typing import Any, Dict

from pystage import Model


class RunningTotal(Model):
    def __init__(self, options: Dict[str, Any]) -> None:
        super().__init__(options)
        self.key_field = str(options.get("key_field", "key"))
        self.field = str(options.get("field", "a"))
        self.out = str(options.get("out", "total"))
        self.totals: Dict[Any, Any] = {}

    def init(self, data_path: str) -> None:
        with open(data_path, encoding="utf-8") as handle:
            self.totals.update(json.load(handle))
        self.context.logger.info("starting totals loaded", extra={"keys": len(self.totals)})

    def execute(self, msg: Dict[str, Any]) -> Dict[str, Any]:
        key = msg.get(self.key_field)
        total = self.totals.get(key, 0) + msg[self.field]
        self.totals[key] = total
        return {self.key_field: key, self.out: total}
