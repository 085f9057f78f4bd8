from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from forge_core.sdk import CONTINUATION, ExecutionContext, Family, ProjectRef, StepSpec, StepStatus
from forge_core.testing import PluginHost
from forge_core.testing.contracts import StepRunnerContract


class TestExecStepRunner(StepRunnerContract):
    plugin_id = "forge_exec"
    distribution = "catalyst-forge-exec"
    names = ("exec",)


def run(host: PluginHost, target: str, tmp_path: Path, **context: object) -> tuple[object, list[str]]:
    lines: list[str] = []
    runner = host.create(Family.STEP_RUNNER, "exec")
    step = StepSpec(name="s", action="exec", target=target, timeout=context.pop("step_timeout", None))  # type: ignore[arg-type]
    ctx = ExecutionContext(workdir=tmp_path, log=lines.append, **context)  # type: ignore[arg-type]
    outcome = runner.run(step, ProjectRef(name="p", path="."), ctx)
    return outcome, lines


def test_runs_in_the_workdir_and_streams_output(forge_installed_host: PluginHost, tmp_path: Path) -> None:
    (tmp_path / "marker.txt").write_text("here\n")
    outcome, lines = run(forge_installed_host, "cat marker.txt; echo err >&2", tmp_path)
    assert outcome.status is StepStatus.SUCCESS and outcome.exit_code == 0  # type: ignore[attr-defined]
    assert lines == ["here", "err"]


def test_nonzero_exit_fails_with_the_code(forge_installed_host: PluginHost, tmp_path: Path) -> None:
    outcome, _ = run(forge_installed_host, "exit 3", tmp_path)
    assert outcome.status is StepStatus.FAILED and outcome.exit_code == 3  # type: ignore[attr-defined]


def test_environment_and_masked_secrets(forge_installed_host: PluginHost, tmp_path: Path) -> None:
    outcome, lines = run(
        forge_installed_host, 'echo "$GREETING and $TOKEN"', tmp_path,
        env={"GREETING": "hello"}, secrets={"TOKEN": "s3cr3t-value"},
    )
    assert outcome.status is StepStatus.SUCCESS  # type: ignore[attr-defined]
    assert lines == ["hello and ****"]


def test_timeout_kills_the_process_group(forge_installed_host: PluginHost, tmp_path: Path) -> None:
    outcome, lines = run(forge_installed_host, "sleep 30 & sleep 30", tmp_path, step_timeout=timedelta(seconds=0.5))
    assert outcome.status is StepStatus.TIMED_OUT  # type: ignore[attr-defined]
    assert outcome.duration_seconds < 10  # type: ignore[attr-defined]
    assert "timed out" in lines[-1]


def test_empty_command_fails_clearly(forge_installed_host: PluginHost, tmp_path: Path) -> None:
    outcome, lines = run(forge_installed_host, "  ", tmp_path)
    assert outcome.status is StepStatus.FAILED and "empty" in outcome.message  # type: ignore[attr-defined]
    assert lines == ["step s: no command (the step's target is empty)"]


def test_an_exec_step_takes_no_settings(forge_installed_host: PluginHost) -> None:
    schema = forge_installed_host.get(Family.STEP_RUNNER, "exec").options["settings"]
    assert schema.model_validate({}) is not None
    with pytest.raises(ValidationError, match="env"):
        schema.model_validate({"env": {"A": "1"}})


def test_a_line_without_end_is_read_in_bounded_marked_pieces(forge_installed_host: PluginHost, tmp_path: Path) -> None:
    from forge_exec.runner import READ_CHUNK

    outcome, lines = run(forge_installed_host, "head -c 100000 /dev/zero | tr '\\0' a; echo; echo next", tmp_path)
    assert outcome.status is StepStatus.SUCCESS  # type: ignore[attr-defined]
    *pieces, last = lines
    assert last == "next"
    assert len(pieces) == -(-100000 // READ_CHUNK)
    assert not pieces[0].startswith(CONTINUATION)
    assert all(p.startswith(CONTINUATION) for p in pieces[1:])
    assert all(len(p) <= READ_CHUNK + len(CONTINUATION) for p in pieces)
    assert "".join(p.removeprefix(CONTINUATION) for p in pieces) == "a" * 100000


def test_a_secret_across_two_reads_of_a_long_line_is_still_masked(
    forge_installed_host: PluginHost, tmp_path: Path
) -> None:
    from forge_exec.runner import READ_CHUNK

    secret = "s3cr3t-t0ken-value"
    # the secret starts 5 characters before the end of the first read
    target = f"head -c {READ_CHUNK - 5} /dev/zero | tr '\\0' a; printf %s \"$TOKEN\"; echo tail"
    outcome, lines = run(forge_installed_host, target, tmp_path, secrets={"TOKEN": secret})
    assert outcome.status is StepStatus.SUCCESS  # type: ignore[attr-defined]
    joined = "".join(p.removeprefix(CONTINUATION) for p in lines)
    assert secret not in joined and secret[:5] not in joined
    assert joined == "a" * (READ_CHUNK - 5) + "****tail"
