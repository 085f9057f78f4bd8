"""Log lines of bounded length: a longer line is split, each later piece marked as a continuation."""

from __future__ import annotations

CONTINUATION = "↪ "
"""Starts every piece of a split line but the first: the line goes on from the piece before."""


def split_line(line: str, limit: int) -> list[str]:
    """``line`` in pieces of at most ``limit`` characters, the marker included; later pieces marked."""
    if len(line) <= limit:
        return [line]
    room = max(limit - len(CONTINUATION), 1)
    pieces = [line[:limit]]
    pieces += [CONTINUATION + line[start:start + room] for start in range(limit, len(line), room)]
    return pieces
