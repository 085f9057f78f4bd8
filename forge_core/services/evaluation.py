"""Evaluating many configuration files in one CUE evaluation, and mapping errors back to them.

A CUE evaluation has a fixed cost (a process, or a WebAssembly instance) and loading many files or
packages is slow, so discovery evaluates one generated package for the whole batch:

- ``forge.cue``: the shipped schemas (``forge_core/schemas``);
- ``names.cue``: the names installed plugins registered (#StepAction, #ArtifactType, ...), and the
  phase and publisher names of ``repo.cue``;
- ``sources.cue``: ``repo: #Repo & {...}`` and one ``projects: pN: #Project & {...}`` per project,
  each holding the body of the user's file line for line (its package clause and imports are
  lifted to the top), followed by the injected ``#forge`` values and ``#artifact`` references.

Positions CUE reports in ``sources.cue`` map back to the user's file, line and column exactly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Protocol

from forge_core.domain.config import Diagnostic
from forge_core.domain.errors import ForgeError


@dataclass(frozen=True)
class Position:
    file: str
    line: int
    column: int


@dataclass(frozen=True)
class CueError:
    """One error as CUE reports it: the value path (may be empty), the message, source positions."""

    path: str
    message: str
    positions: tuple[Position, ...] = ()


@dataclass
class ExportResult:
    value: Any = None
    errors: list[CueError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class EvaluatorError(ForgeError):
    """The evaluator itself failed (not the configuration): missing, crashed, unreadable output."""

    code = "cue_evaluator_failed"
    exit_code = 3


class CueLimitError(EvaluatorError):
    """An evaluation went past one of its limits (input size, time, memory); ``where`` is the setting."""

    code = "cue_limit_exceeded"


class CueEvaluator(Protocol):
    """Exports one package of CUE files as JSON, or reports every error (adapters.cue)."""

    version: str

    def export(self, files: Mapping[str, str], imports: Mapping[str, str] | None = None) -> ExportResult:
        """``files`` are the package exported; ``imports`` (repository paths) are what it may import."""
        ...


def schema_text() -> str:
    return resources.files("forge_core.schemas").joinpath("forge.cue").read_text(encoding="utf-8")


# --- the user's file: package clause, imports, body ----------------------------------------

_PACKAGE = re.compile(r"^package\s+(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(//.*)?$")
_IMPORT_SPEC = re.compile(r'^(?:(?P<alias>[A-Za-z_][A-Za-z0-9_]*)\s+)?(?P<path>"[^"]+")\s*(//.*)?$')


@dataclass(frozen=True)
class Header:
    imports: tuple[tuple[str | None, str], ...]  # (alias, quoted path)
    body_line: int  # 1-based line where the body starts
    package: str = ""
    package_line: int = 1
    import_lines: tuple[int, ...] = ()  # the line of each import spec


def split_header(text: str, file: str) -> Header | Diagnostic:
    """The file's imports and where its body starts; its package clause is required."""
    lines = text.splitlines()
    index, imports, import_lines = 0, [], []

    def skip() -> None:
        nonlocal index
        while index < len(lines) and (not lines[index].strip() or lines[index].strip().startswith("//")):
            index += 1

    skip()
    package = _PACKAGE.match(lines[index].strip()) if index < len(lines) else None
    if package is None:
        return Diagnostic(
            file=file, line=min(index + 1, max(len(lines), 1)), column=1,
            message="expected a package clause first (e.g. `package project`)",
        )
    package_line = index + 1
    index += 1
    while True:
        skip()
        line = lines[index].strip() if index < len(lines) else ""
        if not line.startswith("import"):
            break
        rest = line[len("import") :].strip()
        if rest.startswith("("):
            rest = rest[1:].strip()
            while True:
                if rest.startswith(")"):
                    break
                if rest and not rest.startswith("//"):
                    match = _IMPORT_SPEC.match(rest)
                    if not match:
                        return Diagnostic(file=file, line=index + 1, column=1, message=f"malformed import {rest!r}")
                    imports.append((match.group("alias"), match.group("path")))
                    import_lines.append(index + 1)
                index += 1
                if index >= len(lines):
                    return Diagnostic(file=file, line=index, column=1, message="unterminated import block")
                rest = lines[index].strip()
        else:
            match = _IMPORT_SPEC.match(rest)
            if not match:
                return Diagnostic(file=file, line=index + 1, column=1, message=f"malformed import {rest!r}")
            imports.append((match.group("alias"), match.group("path")))
            import_lines.append(index + 1)
        index += 1
    return Header(tuple(imports), index + 1, package.group("name"), package_line, tuple(import_lines))


# --- the batch -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One file to evaluate: ``key`` is ``repo`` or a project key (``p0``, ``p1``, ...); the files
    of one project's ``.forge/`` folder share its key (``project.cue`` first)."""

    key: str
    file: str
    text: str


@dataclass(frozen=True)
class Segment:
    key: str
    file: str
    first: int  # first line in sources.cue holding the user's body
    last: int  # last such line
    offset: int  # user line = sources.cue line - offset
    end: tuple[int, int] = (1, 1)  # the end of the user's file (line, column)


@dataclass
class Batch:
    files: dict[str, str]
    segments: list[Segment]
    imports: dict[int, tuple[str, Position]] = field(default_factory=dict)  # lifted import line → its source

    def import_at(self, line: int, column: int) -> tuple[str, Position] | None:
        """The key and position in the user's file of the import ``line`` of sources.cue lifted."""
        found = self.imports.get(line)
        if found is None:
            return None
        key, at = found
        return key, Position(at.file, at.line, at.column + max(column - 2, 0))  # lifted as "\t<spec>"

    def segment(self, key: str) -> Segment | None:
        return next((s for s in self.segments if s.key == key), None)

    def at_line(self, line: int) -> Segment | None:
        """The segment holding ``line``; for a generated line, the segment before it (the one
        a key's opening line precedes, or whose key's closing lines follow)."""
        previous = None
        for segment in self.segments:
            if segment.first <= line <= segment.last:
                return segment
            opening = segment.first - 1 if previous is None or previous.key != segment.key else segment.first
            if line < opening:
                return previous
            previous = segment
        return previous


SOURCES = "sources.cue"
INJECTED = (
    "artifacts: {{...}}\n"  # in scope for #artifact even when the project declares no artifacts
    "#artifact: {{for n, _ in artifacts {{(n): #ArtifactRef & {{_name: n}}}}, ...}}\n"
    "#forge: #Runtime & {runtime}\n"
)


NOTHING_INSTALLED = 'string & <""'
"""What a family with no installed implementation admits: no string (none is below ""). Not
``_|_``, which fails the whole evaluation at the definition; this fails each value that names
one, at the value's line."""


def _disjunction(names: list[str]) -> str:
    return " | ".join(json.dumps(n) for n in sorted(names)) or NOTHING_INSTALLED


def _known(names: Mapping[str, list[str]], definition: str, what: str) -> str:
    installed = ", ".join(names.get(definition, []))
    if installed or definition in ("#PhaseName", "#PublisherName"):
        return installed or "none"
    return f"none (no installed plugin registers a {what}; `forge plugins` lists what is installed)"


def names_file(names: Mapping[str, list[str]]) -> str:
    """``names.cue``: what plugins registered, and the phase and publisher names of repo.cue."""
    lines = ["package forge", ""]
    lines += [f"{definition}: {_disjunction(values)}" for definition, values in sorted(names.items())]
    lines += [
        "#PhaseName: or([for k, _ in repo.phases {k}])",
        "#PublisherName: or([for k, _ in repo.publishers {k}])",
    ]
    return "\n".join(lines) + "\n"


def build_batch(
    repo: Source, projects: list[Source], headers: Mapping[str, Header], names: Mapping[str, list[str]],
    runtime: Mapping[str, str],
) -> Batch:
    """The files of one evaluation of ``repo`` and ``projects`` (headers split, by file).

    The files of one project (consecutive sources with one key) share its struct, one body after
    the other, as the files of one CUE package share its top level."""
    imports: dict[str, tuple[str, str, Position]] = {}  # name → spec, the first key and place declaring it
    for source in (repo, *projects):
        header = headers[source.file]
        for (alias, path), line in zip(header.imports, header.import_lines, strict=True):
            spec = f"{alias} {path}" if alias else path
            column = source.text.splitlines()[line - 1].find(spec) + 1
            imports.setdefault(alias or path, (spec, source.key, Position(source.file, line, max(column, 1))))
    out = ["package forge", ""]
    lifted: dict[int, tuple[str, Position]] = {}
    if imports:
        out.append("import (")
        for spec, key, at in imports.values():
            out.append(f"\t{spec}")
            lifted[len(out)] = (key, at)
        out += [")", ""]
    segments = []
    injected = INJECTED.format(runtime=json.dumps(dict(runtime), sort_keys=True))
    sources = [repo, *projects]
    for index, source in enumerate(sources):
        if index == 0 or sources[index - 1].key != source.key:
            out.append("repo: #Repo & {" if source.key == "repo" else f"projects: {source.key}: #Project & {{")
        header = headers[source.file]
        body = source.text.splitlines()[header.body_line - 1 :]
        first = len(out) + 1
        out += body
        lines = source.text.splitlines() or [""]
        end = (len(lines), len(lines[-1]) + 1)
        segments.append(Segment(source.key, source.file, first, len(out), first - header.body_line, end))
        if index + 1 < len(sources) and sources[index + 1].key == source.key:
            continue
        if source.key != "repo":
            out += injected.splitlines()
        out.append("}")
    return Batch(
        files={"forge.cue": schema_text(), "names.cue": names_file(names), SOURCES: "\n".join(out) + "\n"},
        segments=segments,
        imports=lifted,
    )


def compatible_imports(batch_imports: dict[str, str], header: Header) -> bool:
    """Whether a file's imports can join a batch's (one alias may name only one path)."""
    for alias, path in header.imports:
        name = alias or path
        if batch_imports.get(name, path) != path:
            return False
    return True


# --- errors back to the user's files ---------------------------------------------------------

_DISJUNCTION = re.compile(r"^\d+ errors in empty disjunction")
_NOT_ALLOWED = re.compile(r"^field (?P<name>\S+) not allowed$")
_KEY = re.compile(r"^(?:repo|projects\.(?P<key>p\d+))(?:\.|$)")


@dataclass(frozen=True)
class Mapped:
    """A CUE error attributed to one project or the repo (``key``), or to none (structural)."""

    key: str | None
    path: str  # the value path inside the user's file
    message: str
    positions: tuple[Position, ...]  # in the user's files (an imported package's included)


def map_error(batch: Batch, error: CueError) -> Mapped:
    key = None
    match = _KEY.match(error.path)
    path = error.path
    if match:
        key = match.group("key") or "repo"
        path = error.path[match.end() :]
    positions = []
    for position in error.positions:
        if position.file != SOURCES:
            if position.file not in batch.files:  # an imported file, laid out at its repository path
                positions.append(position)
            continue
        lifted = batch.import_at(position.line, position.column)
        if lifted is not None:  # an import (not found, not used): where the user's file has it
            key = key or lifted[0]
            positions.append(lifted[1])
            continue
        segment = batch.at_line(position.line)
        if segment is None:
            continue
        if key is None and not match:
            key = segment.key
        if segment.key != key:
            continue
        if segment.first <= position.line <= segment.last:
            positions.append(Position(segment.file, position.line - segment.offset, position.column))
        elif position.line > segment.last:  # in what follows the body: the end of the user's file
            positions.append(Position(segment.file, *segment.end))
    return Mapped(key, path, error.message, tuple(positions))


# Rules that turn CUE's words into ours: (value path pattern, message pattern, definition, what).
_NAME_RULES = (
    (re.compile(r"^phases\.[^.]+\.steps\.\d+\.action$"), "#StepAction", "step action"),
    (re.compile(r"^artifacts\.[^.]+\.type$"), "#ArtifactType", "artifact type"),
    (re.compile(r"^publishers\.[^.]+\.type$"), "#PublisherType", "publisher type"),
    (re.compile(r"^artifacts\.[^.]+\.publishers\.\d+$"), "#PublisherName", "publisher (not in repo.cue)"),
    (re.compile(r"^(publishers\.[^.]+\.credentials|phases\.[^.]+\.steps\.\d+\.secrets\.[^.]+)\.provider$"),
     "#SecretProvider", "secret provider"),
)
_FIELD_RULES = (
    (re.compile(r"^phases$"), "#PhaseName", "phase (not in repo.cue)"),
    (re.compile(r"^artifacts\.[^.]+\.producer$"), "#ProducerKind", "producer"),
    (re.compile(r"^release\.on\.\d+$"), "#TriggerType", "release trigger"),
)


def _token_at(text: str, position: Position) -> str:
    line, column = position.line, position.column
    lines = text.splitlines()
    if not 0 < line <= len(lines):
        return ""
    match = re.match(r'"[^"]*"|[^\s,}\]]+', lines[line - 1][column - 1 :])
    return match.group(0).strip('"') if match else ""


def diagnostics_for(
    errors: list[Mapped], sources: Mapping[str, Source], names: Mapping[str, list[str]],
    project_names: Mapping[str, str], texts: Mapping[str, str] | None = None,
) -> list[Diagnostic]:
    """Diagnostics in the user's words, one per problem, naming file, line and column.

    ``sources`` holds each key's main file; ``texts`` every other file positions may name (a
    project's further ``.forge`` files, imported packages)."""
    out: dict[tuple[Any, ...], Diagnostic] = {}
    files = {s.file: s.text for s in sources.values()} | dict(texts or {})

    def token(position: Position) -> str:
        return _token_at(files.get(position.file, ""), position)

    for error in errors:
        if error.key is None or _DISJUNCTION.match(error.message):
            continue  # an empty disjunction's headline: its parts follow, with positions
        source = sources[error.key]
        message = f"{error.path}: {error.message}" if error.path else error.message
        positions = list(error.positions)
        not_allowed = _NOT_ALLOWED.match(error.message)
        if not_allowed:
            field_name = not_allowed.group("name").strip('"')
            named = [p for p in positions if token(p).rstrip(":") == field_name]
            positions = named or positions
            for pattern, definition, what in _FIELD_RULES:
                if pattern.match(error.path):
                    message = f"unknown {what} {field_name!r}; known: {_known(names, definition, what)}"
                    break
            else:
                where = f"{error.path}." if error.path else ""
                message = f"{where}{field_name}: field not allowed by the schema"
        else:
            for pattern, definition, what in _NAME_RULES:
                if pattern.match(error.path):
                    value = token(positions[-1]) if positions else ""
                    message = f"unknown {what} {value!r}; known: {_known(names, definition, what)}"
                    break
            else:
                if error.path.endswith("timeout") and "out of bound" in error.message:
                    value = token(positions[-1]) if positions else ""
                    message = f"{error.path}: {value!r} is not a duration (like '90s', '10m', '1h30m')"
        at = positions[-1] if positions else None
        diagnostic = Diagnostic(
            file=at.file if at else source.file, line=at.line if at else None,
            column=at.column if at else None, message=message, project=project_names.get(error.key),
        )
        out.setdefault((diagnostic.file, diagnostic.line, diagnostic.column, diagnostic.message), diagnostic)
    return sorted(out.values(), key=lambda d: (d.file, d.line or 0, d.column or 0, d.message))
