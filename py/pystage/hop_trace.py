"""Hop timestamps of the server's requests, for bench/tools/hop-trace.ts only.

Off unless PYSTAGE_HOP_TRACE names a directory when the server starts: the hooks in model_server.py test
`hop_trace.RING is not None` once per socket read, which is all that tracing costs when it is off.
When on, each request's receive and reply-sent times (time.perf_counter_ns: CLOCK_MONOTONIC, the clock of
node's process.hrtime) go into a preallocated array, and gc.callbacks stamps each collection; `dump`
writes both as JSON into that directory (py-<pid>.json) when the server stops.
"""
import gc
import json
import os
import time
from array import array
from typing import Any, Dict, List, Optional

CAPACITY = 1 << 17
FIELDS = ("request", "received", "sent")
GC_FIELDS = ("start", "ns", "generation")


class _Ring:
    def __init__(self, width: int) -> None:
        self.width = width
        self.values = array("q", bytes(8 * width * CAPACITY))
        self.next = 0

    def add(self, *row: int) -> None:
        base = (self.next % CAPACITY) * self.width
        self.values[base:base + self.width] = array("q", row)
        self.next += 1

    def rows(self) -> List[List[int]]:
        n = min(self.next, CAPACITY)
        first = self.next % CAPACITY if self.next > CAPACITY else 0
        out = []
        for k in range(n):
            base = ((first + k) % CAPACITY) * self.width
            out.append(list(self.values[base:base + self.width]))
        return out


_DIR = os.environ.get("PYSTAGE_HOP_TRACE") or None
RING: Optional[_Ring] = _Ring(len(FIELDS)) if _DIR else None
_GC: Optional[_Ring] = _Ring(len(GC_FIELDS)) if _DIR else None
_gc_started = 0

now_ns = time.perf_counter_ns


def _on_gc(phase: str, info: Dict[str, Any]) -> None:
    global _gc_started
    if phase == "start":
        _gc_started = now_ns()
    elif _GC is not None:
        _GC.add(_gc_started, now_ns() - _gc_started, int(info.get("generation", -1)))


if _GC is not None:
    gc.callbacks.append(_on_gc)


def request_done(req_id: Optional[int], received: int) -> None:
    """A request read at `received` has had its reply sent (tracing only)."""
    if RING is not None:
        RING.add(-1 if req_id is None else req_id, received, now_ns())


def dump() -> None:
    if RING is None or _GC is None or _DIR is None:
        return
    data = {"role": "python", "pid": os.getpid(),
            "hops": {"fields": FIELDS, "rows": RING.rows()},
            "gc": {"fields": GC_FIELDS, "rows": _GC.rows()}}
    with open(os.path.join(_DIR, f"py-{os.getpid()}.json"), "w", encoding="utf-8") as f:
        json.dump(data, f)
