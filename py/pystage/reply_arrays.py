"""The item arrays of a batch reply (Items, or a Lean reply's Errors, Files and Result), as a mixin of
ModelExecutor: the whole array in one C call when it surely fits, else result by result (spilling to
spool files what is over the inline limit or the reply's budget)."""
from operator import itemgetter
from typing import Any, Callable, Dict, List, Optional, Tuple

from .model_failure import unencodable_output
from .placed_outputs import OutputPlacer, PlacedOutputs
from .protocol import ITEM_NO_OUTPUT, ITEM_RESULT, OK, RequestError, encode_json, encode_payload
from .vectorised_batch import ItemError

_index_of = itemgetter(0)
# What a batch reply spends besides the JSON of results, Error objects and file paths, for its reply
# budget: (per item, more per failed item, more per file item), as upper bounds. In items,
# `{"Code":1,"Result":null},` is the largest wrapper and `{"Code":0,"Result":null,"OutputFile":},` is 14
# more; in Lean, `null,` in Result, then `[index,code,],` in Errors or `[index,],` in Files.
_ITEM_COSTS = (25, 0, 14)
_LEAN_COSTS = (5, 20, 25)
_EMPTY_ARRAY = b"[]"

class ReplyArrays:
    """What the arrays need of the executor: its limits, its encoder and placer, and `_too_large`."""

    inline_limit: int
    max_output_bytes: int
    reply_budget: int
    _whole_limit: int
    _no_output_item: Dict[str, Any]
    _encode_output: Callable[[Any], bytes]
    _placer: OutputPlacer
    _too_large: Callable[[str, int, str], RequestError]

    def _items_array(self, results: List[Optional[Dict[str, Any]]], errors: List[ItemError], placed: PlacedOutputs) -> bytes:
        """`[{Code, Result}|{Code, Error}|{Code, Result: null, OutputFile}, ...]`, one item per input."""
        data: Optional[bytes] = None
        if not placed:
            no_output = self._no_output_item
            items = [no_output if result is None else {"Code": OK, "Result": result} for result in results]
            for index, error in errors:
                items[index] = {"Code": error.code, "Error": error.error()}
            try:
                data = encode_json(items).encode("utf-8")
            except Exception:
                data = None  # some result is not JSON: found and reported item by item below
        # Each item's result is part of the whole, so a whole within the limits needs no per-item check.
        if data is not None and len(data) <= self._whole_limit and len(data) <= self.max_output_bytes:
            return data
        encoded, files = self._encode_one_by_one(results, errors, _ITEM_COSTS, placed)
        failed_at = dict(errors)
        file_at = dict(files)
        parts: List[bytes] = []
        for index, data in enumerate(encoded):
            if data is not None:
                parts.append(ITEM_RESULT % data)
            elif index in file_at:
                parts.append(encode_payload({"Code": OK, "Result": None, "OutputFile": file_at[index]}))
            elif index in failed_at:
                error = failed_at[index]
                parts.append(encode_payload({"Code": error.code, "Error": error.error()}))
            else:
                parts.append(ITEM_NO_OUTPUT)
        return b"[%s]" % b",".join(parts)

    def _lean_arrays(self, results: List[Optional[Dict[str, Any]]],
                     errors: List[ItemError], placed: PlacedOutputs) -> Tuple[bytes, bytes, bytes]:
        """A Lean reply's Errors `[[index, code, Error], ...]`, Files `[[index, path], ...]` and Result `[dict|null, ...]`."""
        errors_data = _errors_array(errors)
        data: Optional[bytes] = None
        if not placed:
            try:
                data = encode_json(results).encode("utf-8")
            except Exception:
                data = None
        if (data is not None and len(data) <= self.inline_limit and len(data) <= self.max_output_bytes
                and len(data) + len(errors_data) <= self.reply_budget):
            return errors_data, _EMPTY_ARRAY, data
        encoded, files = self._encode_one_by_one(results, errors, _LEAN_COSTS, placed)
        return (_errors_array(errors), encode_payload(files),
                b"[%s]" % b",".join(b"null" if data is None else data for data in encoded))

    def _encode_one_by_one(self, results: List[Optional[Dict[str, Any]]], errors: List[ItemError],
                           costs: Tuple[int, int, int], placed: PlacedOutputs) -> Tuple[List[Optional[bytes]], List[Tuple[int, str]]]:
        """Encode results one by one: each one's JSON (None where it is not inline) and the spool files.

        Results placed before their state committed keep their place. Of the rest, one over the inline
        limit, or one that would take the reply past its budget, goes to a file; one that cannot be
        encoded (or written) joins `errors`, which stays in index order: none of them changed the state."""
        item_cost, error_cost, file_cost = costs
        # The reply's size so far, from above: every item's share but its result, the placed results, then
        # the other results as they come.
        total = (item_cost * len(results) + sum(len(encode_payload(error.error())) + error_cost for _, error in errors)
                 + placed.reserved + sum(len(encode_json(path).encode("utf-8")) + file_cost for path in placed.files.values()))
        limit, budget = self.inline_limit, self.reply_budget
        inline_placed, files_placed = placed.inline, placed.files
        encoded: List[Optional[bytes]] = []
        files: List[Tuple[int, str]] = []
        failed = False
        for index, result in enumerate(results):
            encoded.append(None)
            if result is None:
                continue
            if placed:
                if index in inline_placed:
                    encoded[index] = inline_placed[index]
                    continue
                if index in files_placed:
                    files.append((index, files_placed[index]))
                    continue
            try:
                data = self._encode_output(result)
            except Exception as exc:
                errors.append((index, unencodable_output(exc)))
                failed = True
                total += len(encode_payload(errors[-1][1].error())) + error_cost
                continue
            if len(data) > self.max_output_bytes:
                errors.append((index, self._too_large("", len(data), "")))
                failed = True
                total += len(encode_payload(errors[-1][1].error())) + error_cost
                continue
            if len(data) <= limit and total + len(data) <= budget:
                encoded[index] = data
                total += len(data)
                continue
            try:
                path = self._placer.spill(data)
            except RequestError as exc:
                errors.append((index, exc))
                failed = True
                total += len(encode_payload(exc.error())) + error_cost
                continue
            files.append((index, path))
            total += len(encode_json(path).encode("utf-8")) + file_cost
        if failed:
            errors.sort(key=_index_of)
        return encoded, files


def _errors_array(errors: List[ItemError]) -> bytes:
    """A Lean reply's Errors: `[[index, code, Error], ...]`."""
    return encode_payload([(index, error.code, error.error()) for index, error in errors]) if errors else _EMPTY_ARRAY
