"""Log lines of bounded length: a longer line is split, each later piece marked as a continuation."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import IO

from forge_core.domain.secrets import longest_form, mask_across, mask_secrets, may_begin_secret, safe_cut

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


def bounded_pieces(line: str, limit: int, secrets: Sequence[str] = ()) -> Iterator[str]:
    """``line`` masked, in the pieces :func:`split_line` makes, made one at a time.

    A line handed over whole (a runner that does not read in pieces) is masked a window at a time,
    never cut inside a secret, so a line of any length costs a few pieces' memory beyond itself,
    never a masked copy and a list of every piece."""
    if len(line) <= 4 * limit:
        yield from split_line(mask_secrets(line, secrets), limit)
        return
    hold = longest_form(secrets)
    step, room = max(limit, 2 * hold), max(limit - len(CONTINUATION), 1)
    pending, carry, start, first = "", "", 0, True
    while start < len(line):
        text = carry + line[start:start + step]
        start += step
        cut = safe_cut(text, secrets, len(text) - hold) if hold and start < len(line) else len(text)
        body, carry = text[:cut], text[cut:]
        pending += mask_secrets(body, secrets)
        while len(pending) >= (size := limit if first else room):
            yield ("" if first else CONTINUATION) + pending[:size]
            pending, first = pending[size:], False
    if carry:
        pending += mask_secrets(carry, secrets)
    while pending:
        size = limit if first else room
        yield ("" if first else CONTINUATION) + pending[:size]
        pending, first = pending[size:], False


def read_output(stream: IO[str], secrets: Iterable[str] = (), size: int = 32 * 1024) -> Iterator[str]:
    """The lines of a command's output, masked, read at most ``size`` characters at a time.

    A line longer than that comes in pieces, each later one starting with :data:`CONTINUATION`, so
    a line without end costs no more memory than a short one. A secret is never cut between two
    pieces (the end of a piece that could begin one waits for the next read), nor shown when it is
    split between two lines by a carriage return or a line break (text streams read ``\r`` and
    ``\r\n`` as line ends): a line that ends like the start of a secret waits for the next one."""
    secrets = tuple(secrets)
    return _masked_across_lines(_pieces(stream, secrets, size), secrets) if secrets else _pieces(stream, secrets, size)


def _masked_across_lines(pieces: Iterable[str], secrets: tuple[str, ...]) -> Iterator[str]:
    held: str | None = None  # a line whose end may begin a secret, not yet shown
    last = ""  # the line shown last
    for piece in pieces:
        if not piece.startswith(CONTINUATION):  # a new line: the one before ended
            if held is not None:
                held, piece = mask_across(held, piece, secrets)
            elif last:
                _, piece = mask_across(last, piece, secrets)
        if held is not None:
            yield held
            last, held = held, None
        if may_begin_secret(piece, secrets):
            held = piece
            continue
        yield piece
        last = piece
    if held is not None:
        yield held


def _pieces(stream: IO[str], secrets: tuple[str, ...], size: int) -> Iterator[str]:
    hold = longest_form(secrets)
    carry, continued = "", False
    while piece := stream.readline(size):
        text = carry + piece
        ended = text.endswith("\n")
        if ended:
            body, carry = text[:-1], ""
        else:
            cut = safe_cut(text, secrets, len(text) - hold)
            body, carry = text[:cut], text[cut:]
            if not body:
                continue
        yield (CONTINUATION if continued else "") + mask_secrets(body, secrets)
        continued = not ended
    if carry:
        yield (CONTINUATION if continued else "") + mask_secrets(carry, secrets)
