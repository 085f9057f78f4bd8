"""Every CUE evaluation is bounded: input size, wall-clock time, memory; scratch files never stay."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from forge_core.adapters.cue import BinaryEvaluator, CueLimitError, NodeEvaluator, open_evaluator, sweep_scratch
from forge_core.settings.cue import CueSettings

# Each field doubles the string of the one before: about 8 GiB by a29 if nothing stops it.
BOMB = "package x\na0: \"xxxxxxxxxxxxxxxx\"\n" + "".join(f"a{i}: a{i - 1} + a{i - 1}\n" for i in range(1, 30))
# Nine million iterations: minutes of work in little memory.
SLOW = 'package x\nimport "list"\nx: len([for a in list.Range(0,3000,1) for b in list.Range(0,3000,1) if a == b {a}])\n'
SMALL = {"a.cue": "package x\na: 1\n"}


@pytest.fixture
def scratch_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary folder evaluations write to, private to the test."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def node_evaluator(**limits: object) -> NodeEvaluator:
    evaluator = open_evaluator(CueSettings(binary="", **limits))  # type: ignore[arg-type]
    assert isinstance(evaluator, NodeEvaluator)
    return evaluator


def test_input_over_the_size_limit_is_refused_before_evaluation_naming_the_file(scratch_root: Path) -> None:
    evaluator = node_evaluator(max_input_bytes=4096)
    try:
        files = {"services/api/.forge/project.cue": "package project\nname: \"api\"\n" + "// pad\n" * 1000}
        with pytest.raises(CueLimitError) as caught:
            evaluator.export(files, {"cue.mod/module.cue": 'module: "a.example/m"\n'})
        assert caught.value.where == "FORGE_CUE__MAX_INPUT_BYTES"
        assert "services/api/.forge/project.cue" in caught.value.message
        assert "4096 bytes" in caught.value.message
        assert evaluator._process is None  # never started: refused before evaluating
        assert list(scratch_root.iterdir()) == []
    finally:
        evaluator.close()


def test_an_expansion_bomb_stops_at_the_memory_cap_and_the_evaluator_recovers(scratch_root: Path) -> None:
    evaluator = node_evaluator(max_memory_mb=512)
    try:
        started = time.monotonic()
        with pytest.raises(CueLimitError) as caught:
            evaluator.export({"bomb.cue": BOMB})
        assert caught.value.where == "FORGE_CUE__MAX_MEMORY_MB"
        assert "512 MiB" in caught.value.message
        assert time.monotonic() - started < 60
        assert evaluator.export(SMALL).value == {"a": 1}
        assert list(scratch_root.iterdir()) == []
    finally:
        evaluator.close()


def test_an_evaluation_past_the_timeout_is_killed_and_the_next_one_gets_a_fresh_process(
    scratch_root: Path,
) -> None:
    evaluator = node_evaluator(timeout_seconds=12.0)
    try:
        assert evaluator.export(SMALL).value == {"a": 1}
        first = evaluator._process
        assert first is not None
        started = time.monotonic()
        with pytest.raises(CueLimitError) as caught:
            evaluator.export({"slow.cue": SLOW})
        assert time.monotonic() - started < 60  # the timeout, the kill and a slack for a loaded machine
        assert caught.value.where == "FORGE_CUE__TIMEOUT_SECONDS"
        assert "within 12 s" in caught.value.message
        assert first.poll() is not None  # killed
        assert list(scratch_root.iterdir()) == []  # its files went with it
        assert evaluator.export({"a.cue": "package x\na: 2\n"}).value == {"a": 2}
        assert evaluator._process is not first
    finally:
        evaluator.close()


def test_the_binary_evaluator_is_killed_past_the_timeout(cue_command: Path, scratch_root: Path) -> None:
    binary = BinaryEvaluator(str(cue_command))
    binary.limits = CueSettings(timeout_seconds=4.0)  # after `cue version`, slow on a loaded machine
    started = time.monotonic()
    with pytest.raises(CueLimitError) as caught:
        binary.export({"slow.cue": SLOW})
    assert time.monotonic() - started < 15
    assert caught.value.where == "FORGE_CUE__TIMEOUT_SECONDS"
    assert list(scratch_root.iterdir()) == []


def test_scratch_folders_of_dead_processes_are_swept_at_start(scratch_root: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = scratch_root / f"forge-cue-{dead.pid}-abc"
    (orphan / "sub").mkdir(parents=True)
    (orphan / "sub" / "a.cue").write_text("package x\n")
    mine = scratch_root / f"forge-cue-{os.getpid()}-def"
    mine.mkdir()
    unrelated = scratch_root / "forge-cue-notapid"
    unrelated.mkdir()
    evaluator = node_evaluator()
    evaluator.close()
    assert not orphan.exists()
    assert mine.exists() and unrelated.exists()
    assert sweep_scratch() == []


def test_the_limits_are_validated_settings() -> None:
    with pytest.raises(ValueError, match="max_memory_mb"):
        CueSettings(max_memory_mb=100)
    with pytest.raises(ValueError, match="timeout_seconds"):
        CueSettings(timeout_seconds=0)
    assert CueSettings(max_memory_mb=None).max_memory_mb is None


# The evaluator of a process killed in the middle of an evaluation (a worker SIGKILLed, the OOM killer).
ORPHANED = """
import sys, tempfile
tempfile.tempdir = sys.argv[1]
from forge_core.adapters.cue import open_evaluator
from forge_core.settings.cue import CueSettings
evaluator = open_evaluator(CueSettings(binary=""))
evaluator.export({"a.cue": "package x\\na: 1\\n"})
print(evaluator._process.pid, flush=True)
evaluator.export({"slow.cue": sys.argv[2]})
"""


def test_the_node_evaluator_dies_with_its_parent_and_its_files_are_swept(scratch_root: Path) -> None:
    import signal
    import sys

    parent = subprocess.Popen(
        [sys.executable, "-c", ORPHANED, str(scratch_root), SLOW], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    node = int(parent.stdout.readline())
    deadline = time.monotonic() + 30
    while not list(scratch_root.glob(f"forge-cue-{parent.pid}-*")):  # the slow evaluation is under way
        assert time.monotonic() < deadline and parent.poll() is None
        time.sleep(0.02)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while _running(node):
        assert time.monotonic() < deadline, "the evaluator outlived the process that started it"
        time.sleep(0.05)
    [left] = scratch_root.iterdir()  # the killed process could not remove its files ...
    assert left.name.startswith(f"forge-cue-{parent.pid}-")
    node_evaluator().close()  # ... the next evaluator's start does
    assert list(scratch_root.iterdir()) == []


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_a_cue_binary_has_a_cpu_time_backstop_should_it_outlive_its_parent() -> None:
    import signal
    import sys

    from forge_core.adapters.cue import _child_limits

    started = time.monotonic()
    spinning = subprocess.run(
        [sys.executable, "-c", "while True: pass"], preexec_fn=_child_limits(None, 0.25), timeout=60, check=False
    )
    assert spinning.returncode == -signal.SIGXCPU  # 0.25 s x 4 + 2 s of CPU
    assert time.monotonic() - started < 20
