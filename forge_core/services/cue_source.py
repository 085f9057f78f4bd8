"""Where a value path is written in a CUE file: for problems found after evaluation.

CUE reports positions for its own errors only; what Python checks later (plugin settings, a
producer's artifact types) has a value path (``artifacts.api.producer.earthly.imageRef``) and
needs the line that wrote it. :func:`locate` reads the file's structure (fields, the
``a: b: c: 1`` shorthand, structs, lists and their elements, strings of every kind, comments) and
answers with the first place that declares the path, or else its deepest declared ancestor (a
missing key points at the struct that lacks it). Values built by references or comprehensions
have no literal declaration: they get their nearest literal ancestor.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Path = tuple[str | int, ...]
Position = tuple[int, int]  # line, column (1-based)

_TOKEN = re.compile(
    r"""
    (?P<nl>\n)
    | (?P<space>[ \t\r\f]+)
    | (?P<comment>//[^\n]*)
    | (?P<string>\#*(?:\"\"\"|'''|"|'))
    | (?P<ident>[\#_$A-Za-z][\#_$A-Za-z0-9]*)
    | (?P<number>[0-9][0-9A-Za-z_.]*)
    | (?P<punct>\.\.\.|[{}\[\](),:?!])
    | (?P<other>.)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str  # nl, string, ident, number, punct, other
    text: str  # a string's value for strings
    line: int
    column: int

    @property
    def punct(self) -> str:
        """The punctuation this token is, or "" (a string holding "}" is no closer)."""
        return self.text if self.kind == "punct" else ""


def _string_end(text: str, start: int, opener: str) -> int:
    """The index after the string opened by ``opener`` at ``start`` (interpolations skipped)."""
    hashes = len(opener) - len(opener.lstrip("#"))
    quote = opener.lstrip("#")
    closer = quote + "#" * hashes
    escape = "\\" + "#" * hashes
    index, depth = start + len(opener), 0
    while index < len(text):
        if text.startswith(escape, index):
            index += len(escape)
            if index < len(text) and text[index] == "(":
                depth += 1
            index += 1
            continue
        char = text[index]
        if depth:
            depth += {"(": 1, ")": -1}.get(char, 0)
        elif text.startswith(closer, index):
            return index + len(closer)
        elif char == "\n" and len(quote) == 1:
            return index  # an unterminated string ends its line (CUE reports it; we only read)
        index += 1
    return index


def _tokens(text: str) -> list[_Token]:
    tokens, index, line, line_start = [], 0, 1, 0
    while index < len(text):
        match = _TOKEN.match(text, index)
        assert match is not None  # the last alternative matches any character
        kind = match.lastgroup or "other"
        column = index - line_start + 1
        if kind == "string":
            end = _string_end(text, index, match.group())
            raw = text[index:end]
            tokens.append(_Token("string", _label_text(raw), line, column))
            line += raw.count("\n")
            if "\n" in raw:
                line_start = index + raw.rindex("\n") + 1
            index = end
            continue
        if kind == "nl":
            tokens.append(_Token("nl", "\n", line, column))
            line, line_start = line + 1, match.end()
        elif kind not in ("space", "comment"):
            tokens.append(_Token(kind, match.group(), line, column))
        index = match.end()
    tokens.append(_Token("eof", "", line, index - line_start + 1))
    return tokens


def _label_text(raw: str) -> str:
    """A quoted label's name (``"container-registry"`` → ``container-registry``)."""
    if raw.startswith('"') and not raw.startswith('"""'):
        try:
            value = json.loads(raw)
            return value if isinstance(value, str) else raw
        except ValueError:
            return raw.strip('"')
    return raw


_ENDS = {"ident", "string", "number"}
_CLOSERS = {"}", "]", ")"}


class _Reader:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens, self.index = tokens, 0
        self.found: dict[Path, Position] = {}

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def mark(self, path: Path, token: _Token) -> None:
        self.found.setdefault(path, (token.line, token.column))

    def struct(self, path: Path) -> None:
        """Fields until ``}`` or the end; the closer is consumed."""
        while True:
            token = self.peek()
            if token.kind == "eof":
                return
            if token.kind == "nl" or token.punct == ",":
                self.index += 1
                continue
            if token.punct in _CLOSERS:
                self.index += 1
                return
            labels = self.labels()
            for depth in range(1, len(labels) + 1):
                self.mark((*path, *(label for label, _ in labels[:depth])), labels[depth - 1][1])
            self.value((*path, *(label for label, _ in labels)))

    def labels(self) -> list[tuple[str, _Token]]:
        """``a: "b": c:`` before a value; dynamic and pattern labels make the path unmatchable."""
        labels: list[tuple[str, _Token]] = []
        while True:
            token = self.peek()
            if token.kind in ("ident", "string"):
                skip = 1
            elif token.punct in ("(", "["):
                skip = self._matching(token.text)
            else:
                return labels
            after = self.peek(skip)
            if after.punct in ("?", "!"):
                skip, after = skip + 1, self.peek(skip + 1)
            if after.punct != ":":
                return labels
            name = token.text if token.kind in ("ident", "string") else "\0"  # "\0": matches no key
            labels.append((name, token))
            self.index += skip + 1

    def _matching(self, opener: str) -> int:
        """How many tokens from here to just past the bracket closing the one at ``opener``."""
        closer, depth = {"(": ")", "[": "]"}[opener], 0
        for offset in range(len(self.tokens) - self.index):
            text = self.peek(offset).punct
            depth += (text == opener) - (text == closer)
            if depth == 0:
                return offset + 1
        return len(self.tokens) - self.index

    def value(self, path: Path) -> None:
        """One value (an expression) up to the comma, newline or closer that ends it."""
        previous = ""
        while True:
            token = self.peek()
            if token.kind == "eof" or token.punct in _CLOSERS or token.punct == ",":
                return
            if token.kind == "nl":
                if previous in ("end", "close"):
                    return
                self.index += 1
                continue
            self.index += 1
            if token.punct == "{":
                self.struct(path)
                previous = "close"
            elif token.punct == "[" and previous != "end" and previous != "close":
                self.list(path)
                previous = "close"
            elif token.punct in ("(", "["):  # a call, a group, or an index like #artifact["api"]
                self.inner(path)
                previous = "close"
            else:
                previous = "end" if token.kind in _ENDS or token.punct == "..." else ""

    def list(self, path: Path) -> None:
        index = 0
        while True:
            token = self.peek()
            if token.kind == "nl":
                self.index += 1
                continue
            if token.kind == "eof":
                return
            if token.punct in _CLOSERS:
                self.index += 1
                return
            if token.punct == ",":
                index, self.index = index + 1, self.index + 1
                continue
            self.mark((*path, index), token)
            self.value((*path, index))
            if self.peek().kind == "nl":
                index += 1

    def inner(self, path: Path) -> None:
        """Inside parentheses: everything up to the closing one (structs within keep ``path``)."""
        while True:
            token = self.peek()
            if token.kind == "eof":
                return
            self.index += 1
            if token.punct in _CLOSERS:
                return
            if token.punct == "{":
                self.struct(path)
            elif token.punct == "[":
                self.list(path)
            elif token.punct == "(":
                self.inner(path)


@functools.lru_cache(maxsize=64)
def field_positions(text: str) -> dict[Path, Position]:
    """Every literally declared value path of a CUE file → where it is first declared."""
    reader = _Reader(_tokens(text))
    while reader.peek().kind != "eof":
        reader.struct(())  # a stray closer at the top level ends one round, not the reading
    return reader.found


def locate(text: str, path: Sequence[str | int]) -> Position | None:
    """Where ``path`` is declared in ``text``, else its deepest declared ancestor; None if no part is."""
    depth, position = _deepest(text, path)
    return position if depth else None


def locate_in(files: Mapping[str, str], path: Sequence[str | int]) -> tuple[str, Position] | None:
    """Which of ``files`` (name → text, one package) declares ``path`` deepest, and where; the
    first file wins a tie."""
    best: tuple[int, str, Position] | None = None
    for name, text in files.items():
        depth, position = _deepest(text, path)
        if depth and (best is None or depth > best[0]):
            best = (depth, name, position)
    return (best[1], best[2]) if best else None


def _deepest(text: str, path: Sequence[str | int]) -> tuple[int, Position]:
    found = field_positions(text)
    for depth in range(len(path), 0, -1):
        position = found.get(tuple(path[:depth]))
        if position is not None:
            return depth, position
    return 0, (0, 0)
