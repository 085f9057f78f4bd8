"""Running an Earthly target for each platform with retries, shared by the step runner and the
producer. Every platform runs (unless stopped or out of time) and every failure is kept: a later
platform's success never hides an earlier one's failure (the earlier Go Forge's bug)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from forge_core.sdk import ExecutionContext, StepRetries
from forge_earthly.command import Invocation, check_platforms, describe
from forge_earthly.process import Attempt, run_once


@dataclass(frozen=True)
class PlatformRun:
    platform: str | None
    attempts: int
    last: Attempt

    def failure(self) -> str:
        """Why this platform failed, for messages (empty when it succeeded)."""
        where = describe(self.platform)
        if self.last.succeeded:
            return ""
        if self.last.start_error:
            return f"{where}: {self.last.start_error}"
        if self.last.stopped:
            return f"{where}: stopped"
        if self.last.timed_out:
            return f"{where}: timed out"
        tried = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        if not self.last.output_seen:
            return f"{where}: exited with code {self.last.exit_code} and printed nothing{tried}"
        return f"{where}: exited with code {self.last.exit_code}{tried}"


def run_platforms(
    invocation: Invocation,
    platforms: list[str],
    *,
    ctx: ExecutionContext,
    env: Mapping[str, str],
    retries: StepRetries,
    deadline: float | None,
    artifact_dest: Callable[[str | None], Path] | None = None,
) -> list[PlatformRun]:
    """One run per platform (attempts per the retries); what each platform's last attempt did."""
    secrets = tuple(ctx.secrets.values())
    results: list[PlatformRun] = []
    for platform in check_platforms(platforms):
        dest = artifact_dest(platform) if artifact_dest is not None else None
        argv = invocation.argv(platform, dest)
        total = retries.attempts + 1
        number = 0
        while True:
            number += 1
            ctx.log(f"earthly: {invocation.target} for {describe(platform)}: attempt {number} of {total}")
            attempt = run_once(argv, cwd=invocation.cwd, env=env, secrets=secrets, log=ctx.log, stop=ctx.stop,
                               deadline=deadline, retries=retries)
            if attempt.succeeded or not _retry(attempt, retries, number, total, ctx.log):
                break
            delay = retries.delay.total_seconds()
            if deadline is not None:
                delay = min(delay, max(0.0, deadline - time.monotonic()))
            ctx.log(f"earthly: retrying {invocation.target} for {describe(platform)} in {delay:g} s")
            if ctx.stop.wait(delay):
                attempt.stopped = True
                break
        results.append(PlatformRun(platform, number, attempt))
        if attempt.stopped or attempt.timed_out:
            break  # no time or no mandate left for the other platforms
    return results


def _retry(attempt: Attempt, retries: StepRetries, number: int, total: int, log: Callable[[str], None]) -> bool:
    if attempt.stopped or attempt.timed_out or attempt.start_error:
        return False
    if not attempt.output_seen:
        log(f"earthly: exited with code {attempt.exit_code} and printed nothing: not retried")
        return False
    if number >= total:
        return False
    if retries.filters and not attempt.matched_filter:
        log("earthly: the output matches none of the retry filters: not retried")
        return False
    return True
