"""The earthly step runner against the stand-in executable."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from forge_core.sdk import ExecutionContext, ProjectRef, StepOutcome, StepRetries, StepSpec, StepStatus
from forge_earthly.runner import EarthlyStepRunner
from forge_earthly.testing import EarthlyStandin

PROJECT = ProjectRef(name="api", path="services/api")


def run(tmp_path: Path, target: str = "+test", *, settings: dict[str, Any] | None = None,
        retries: StepRetries | None = None, secrets: dict[str, str] | None = None,
        timeout: timedelta | None = None, stop: threading.Event | None = None) -> tuple[StepOutcome, list[str]]:
    lines: list[str] = []
    step = StepSpec(name="unit", action="earthly", target=target, settings=settings or {},
                    retries=retries or StepRetries(), timeout=timeout)
    ctx = ExecutionContext(workdir=tmp_path, log=lines.append, secrets=secrets or {},
                           stop=stop or threading.Event())
    return EarthlyStepRunner().run(step, PROJECT, ctx), lines


def project(tmp_path: Path) -> Path:
    return tmp_path / PROJECT.path


def test_success_passes_platform_config_flags_and_build_args(tmp_path: Path, earthly_standin: EarthlyStandin) -> None:
    earthly_standin.script(project(tmp_path), {"test": {"print": ["all green"]}})
    outcome, lines = run(tmp_path, settings={"args": {"VERSION": "1.2.0", "GOOS": "linux"},
                                             "platforms": ["linux/amd64"], "config": "", "allowPrivileged": True,
                                             "ci": True})
    assert outcome.status is StepStatus.SUCCESS and outcome.exit_code == 0
    assert "+test | all green" in lines
    [call] = earthly_standin.calls(project(tmp_path))
    assert call["argv"] == ["--platform", "linux/amd64", "--config", "", "--allow-privileged", "--ci", "+test",
                            "--VERSION=1.2.0", "--GOOS=linux"]
    assert call["args"] == {"VERSION": "1.2.0", "GOOS": "linux"}


def test_target_in_another_folder_of_the_project(tmp_path: Path, earthly_standin: EarthlyStandin) -> None:
    earthly_standin.script(project(tmp_path) / "lint", {"check": {}})
    outcome, _ = run(tmp_path, "./lint+check")
    assert outcome.status is StepStatus.SUCCESS
    assert earthly_standin.calls(project(tmp_path) / "lint")[0]["target"] == "./lint+check"


def test_failure_reports_the_exit_code(tmp_path: Path, earthly_standin: EarthlyStandin) -> None:
    earthly_standin.script(project(tmp_path), {"test": {"print": ["FAIL: TestApi"], "exit": 3}})
    outcome, lines = run(tmp_path)
    assert (outcome.status, outcome.exit_code) == (StepStatus.FAILED, 3)
    assert "the default platform: exited with code 3" in outcome.message
    assert "Error: build target: +test: exit code 3" in lines


def test_each_call_runs_once_the_core_applies_the_steps_retries(
    tmp_path: Path, earthly_standin: EarthlyStandin
) -> None:
    earthly_standin.script(project(tmp_path), {"test": {"fail_first": 1, "fail_text": "flaky"}})
    retries = StepRetries(attempts=2, delay=timedelta(0))
    first, _ = run(tmp_path, retries=retries)
    second, _ = run(tmp_path, retries=retries)  # the CI handler's next attempt
    assert (first.status, second.status) == (StepStatus.FAILED, StepStatus.SUCCESS)
    assert [c["attempt"] for c in earthly_standin.calls(project(tmp_path))] == [1, 2]


def test_an_earlier_platform_failure_is_not_hidden_by_a_later_success(
    tmp_path: Path, earthly_standin: EarthlyStandin
) -> None:
    earthly_standin.script(project(tmp_path), {"test": {"platforms": {"linux/arm64": {"exit": 2}}}})
    outcome, _ = run(tmp_path, settings={"platforms": ["linux/arm64", "linux/amd64"]})
    assert outcome.status is StepStatus.FAILED and outcome.exit_code == 2
    assert "linux/arm64: exited with code 2" in outcome.message and "linux/amd64" not in outcome.message
    assert [c["platform"] for c in earthly_standin.calls(project(tmp_path))] == ["linux/arm64", "linux/amd64"]


def test_secrets_reach_earthly_intact_through_the_environment_and_are_masked(
    tmp_path: Path, earthly_standin: EarthlyStandin
) -> None:
    earthly_standin.script(project(tmp_path), {"test": {"print_secrets": True}})
    value = "s3cr=t,with,commas=and=equals"
    outcome, lines = run(tmp_path, secrets={"API_TOKEN": value, "OTHER": "plain-value-42"})
    assert outcome.status is StepStatus.SUCCESS
    [call] = earthly_standin.calls(project(tmp_path))
    assert call["secrets"] == {"API_TOKEN": value, "OTHER": "plain-value-42"}
    assert call["argv"][:4] == ["--secret", "API_TOKEN", "--secret", "OTHER"]  # ids only, never values
    assert not any(value in line or "plain-value-42" in line for line in lines)
    assert any("secret API_TOKEN=" in line for line in lines)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a killed child not yet reaped by init is gone too


def test_timeout_kills_the_whole_process_group(tmp_path: Path, earthly_standin: EarthlyStandin) -> None:
    earthly_standin.script(project(tmp_path), {"test": {"print": ["working"], "sleep": 30, "child": True}})
    started = time.monotonic()
    outcome, _ = run(tmp_path, timeout=timedelta(seconds=1), settings={"platforms": ["linux/amd64", "linux/arm64"]})
    assert outcome.status is StepStatus.TIMED_OUT and "timed out after 1 s" in outcome.message
    assert time.monotonic() - started < 10
    assert len(earthly_standin.calls(project(tmp_path))) == 1  # no time left for the other platform
    child = int((project(tmp_path) / "standin-child.pid").read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the stand-in's child survived the timeout"


def test_stop_cancels_the_run(tmp_path: Path, earthly_standin: EarthlyStandin) -> None:
    earthly_standin.script(project(tmp_path), {"test": {"print": ["working"], "sleep": 30}})
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    outcome, _ = run(tmp_path, stop=stop)
    assert outcome.status is StepStatus.CANCELLED and time.monotonic() - started < 10


def test_bad_input_fails_clearly_without_running(tmp_path: Path, earthly_standin: EarthlyStandin) -> None:
    earthly_standin.script(project(tmp_path), {"test": {}})
    cases = {
        "./missing+test": "no Earthfile in services/api/missing/",
        "../../../+test": "leaves the checkout",
        "sub+test": "a local reference starts with './'",
    }
    for target, expected in cases.items():
        outcome, _ = run(tmp_path, target)
        assert outcome.status is StepStatus.FAILED and expected in outcome.message, outcome.message
        assert "step unit (project api)" in outcome.message
    outcome, _ = run(tmp_path, settings={"binary": "no-such-earthly"})
    assert "the Earthly executable 'no-such-earthly' is not found" in outcome.message
    outcome, _ = run(tmp_path, settings={"platforms": ["amd64"]})
    assert outcome.status is StepStatus.FAILED and "is not os/arch" in outcome.message
    outcome, _ = run(tmp_path, secrets={"bad-name": "x"})
    assert "cannot be Earthly secret ids" in outcome.message and "'x'" not in outcome.message
    assert earthly_standin.calls(project(tmp_path)) == []


def test_the_standin_refuses_unknown_flags_like_earthly(tmp_path: Path, earthly_standin: EarthlyStandin) -> None:
    import subprocess

    earthly_standin.script(tmp_path, {"test": {}})
    done = subprocess.run([str(earthly_standin.binary), "--no-such-flag", "+test"], cwd=tmp_path,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "Error: flag provided but not defined: --no-such-flag" in done.stderr
