"""Bounds on the size of a model output's JSON, found without encoding it.

A model may return something far too big to deliver (a 2 GB string): encoding it would take seconds and
the memory of another copy, only to be refused. One walk over the output gives a floor (no encoding can
be shorter: every string's characters, every key, one byte per other value) and a ceiling (every
character escaped six-fold, numbers at their longest repr); a floor over the limit fails the message at
once, and only a ceiling over it needs the output encoded to be sure.
"""
from typing import Any, Tuple

# Longer than any float repr or any int the encoder writes in practice; an int beyond is found by encoding.
_NUMBER_MAX = 24


def output_bounds(value: Any, limit: int) -> Tuple[int, float]:
    """(floor, ceiling) of the JSON length of `value`; the walk stops once the floor passes `limit`.
    A type the walk does not know (numpy arrays and the like) makes the ceiling infinite."""
    floor = 0
    ceiling = 0.0
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str:
            floor += len(item) + 2
            ceiling += 6 * len(item) + 2
        elif kind is dict:
            floor += 2
            ceiling += 2
            for key, child in item.items():
                size = len(key) if type(key) is str else _NUMBER_MAX
                floor += size + 4
                ceiling += 6 * size + 4
                stack.append(child)
        elif kind is list or kind is tuple:
            floor += 2 + len(item)
            ceiling += 2 + len(item)
            stack.extend(item)
        elif item is None or kind is bool:
            floor += 4
            ceiling += 5
        elif kind is int or kind is float:
            floor += 1
            ceiling += _NUMBER_MAX if kind is float or -10 ** 20 < item < 10 ** 20 else float("inf")
        else:
            floor += 1
            ceiling = float("inf")
        if floor > limit:
            break
    return floor, ceiling


def output_floor(result: dict, limit: int) -> int:
    """A quick floor for the JSON length of a model's output dict: the characters of its strings (nested
    containers walked by output_bounds). About one type test per value: cheap enough for every message."""
    floor = 0
    for value in result.values():
        kind = type(value)
        if kind is str:
            floor += len(value)
        elif kind is dict or kind is list or kind is tuple:
            floor += output_bounds(value, limit)[0]
    return floor
