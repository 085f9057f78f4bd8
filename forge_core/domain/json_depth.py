"""How deeply a JSON document nests, measured without parsing it (so without recursion).

A parser recurses once per level: a body of a few kilobytes of ``[`` takes Python's JSON reader
or a validator past its recursion limit. Bodies are measured first and refused, with where the
limit was passed, when they nest deeper than anything the platform reads.
"""

from __future__ import annotations

import re

DEFAULT_MAX_DEPTH = 64

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # brackets inside strings do not nest
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_OPEN = frozenset(b"[{")


def nests_deeper_than(raw: bytes, limit: int) -> bool:
    """Whether ``raw`` nests arrays and objects more than ``limit`` deep (brackets in strings do
    not count; a bracket never closed counts as open)."""
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    if len(brackets) <= limit:  # the common case: too few brackets to nest that deep
        return False
    depth = 0
    for char in brackets:
        if char in _OPEN:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def too_deep_message(limit: int, what: str = "JSON body") -> str:
    return (f"{what} is nested too deeply: more than {limit} levels of arrays and objects "
            "(the limit, FORGE_API__MAX_JSON_DEPTH)")
