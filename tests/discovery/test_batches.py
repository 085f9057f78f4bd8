"""Discovery evaluates projects in batches of at most ``FORGE_CUE__BATCH_PROJECTS`` (an
evaluation's cost grows faster than its size), with the same outcome as one batch; and `forge run`
starts the process's shared evaluator before discovery needs it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from forge_core.adapters.cue import EvaluatorPool, NodeEvaluator, shared_evaluator
from forge_core.adapters.git import CommitReader
from forge_core.builtin.discovery import new_discovery, resolve_event
from forge_core.cli.pipeline import start_cue_early
from forge_core.plugin.host import PluginHost
from forge_core.services.evaluation import CueEvaluator, ExportResult
from forge_core.settings import Settings
from forge_core.settings.cue import CueSettings

from .conftest import REPO_CUE, project_cue


class Counting:
    """An evaluator that counts the projects of each export it passes on."""

    def __init__(self, inner: CueEvaluator) -> None:
        self.inner, self.version, self.batches = inner, inner.version, list[int]()

    def export(self, files: Mapping[str, str], imports: Mapping[str, str] | None = None) -> ExportResult:
        self.batches.append(sum(text.count("#Project & {") for text in files.values()))
        return self.inner.export(files, imports)


def repository(make_repo: Callable[..., Path], broken: str | None = None) -> Path:
    files = {".forge/repo.cue": REPO_CUE}
    for n in range(7):
        body = f'artifacts: "a{n}": {{type: "archive", producer: earthly: target: "+a"}}\n'
        files[f"services/s{n}/.forge/project.cue"] = project_cue(body)
    if broken is not None:
        files[f"services/{broken}/.forge/project.cue"] = project_cue("phases: test: steps: 3\n")
    return make_repo(files)


def discovered(host: PluginHost, evaluator: CueEvaluator, repo: Path, cache: Path, batch: int) -> Any:
    reader = CommitReader(repo)
    event = resolve_event(reader, reader.name, commit=None, branch=None, tag=None, detect=True)
    return new_discovery(host.registry, evaluator, cache, CueSettings(batch_projects=batch)).discover(reader, event)


def test_projects_are_evaluated_in_batches_with_the_outcome_of_one_batch(
    host: PluginHost, evaluator: CueEvaluator, make_repo: Callable[..., Path], tmp_path: Path,
) -> None:
    repo = repository(make_repo)
    counting = Counting(evaluator)
    batched = discovered(host, counting, repo, tmp_path / "batched", 3)
    assert counting.batches == [3, 3, 1]
    whole = discovered(host, evaluator, repo, tmp_path / "whole", 200)
    assert batched.ok and whole.ok
    assert batched.model_dump(exclude={"evaluated"}) == whole.model_dump(exclude={"evaluated"})
    assert batched.evaluated == whole.evaluated == 7


def test_a_broken_project_is_reported_from_its_batch_and_the_others_are_planned(
    host: PluginHost, evaluator: CueEvaluator, make_repo: Callable[..., Path], tmp_path: Path,
) -> None:
    repo = repository(make_repo, broken="s4")
    document = discovered(host, evaluator, repo, tmp_path / "cache", 2)
    assert [d.file for d in document.diagnostics] == ["services/s4/.forge/project.cue"]
    assert sorted(p.project.name for p in document.projects) == [f"s{n}" for n in range(7) if n != 4]


def test_forge_run_starts_the_shared_evaluator_before_discovery_asks_for_it(tmp_path: Path) -> None:
    settings = Settings(cue=CueSettings(cache_dir=tmp_path / "own-key"))  # an evaluator of its own
    start_cue_early(settings).join(timeout=120)
    evaluator = shared_evaluator(settings.cue)
    assert evaluator is shared_evaluator(settings.cue.model_copy())  # one per settings, for the process
    if isinstance(evaluator, NodeEvaluator):  # the cue binary has no process to start
        assert evaluator._process is not None and evaluator._process.poll() is None
    assert evaluator.export({"a.cue": "package a\nx: 1\n"}).value == {"x": 1}
    evaluator.close()


def test_batches_evaluated_at_once_by_a_pool_give_the_outcome_of_one_batch(
    host: PluginHost, evaluator: CueEvaluator, make_repo: Callable[..., Path], tmp_path: Path,
) -> None:
    repo = repository(make_repo, broken="s5")
    pool = EvaluatorPool(CueSettings(), 2)
    try:
        together = discovered(host, pool, repo, tmp_path / "pool", 2)
        assert len(pool._opened) <= 2
    finally:
        pool.close()
    whole = discovered(host, evaluator, repo, tmp_path / "whole", 200)
    assert together.model_dump(exclude={"evaluated"}) == whole.model_dump(exclude={"evaluated"})
    assert [d.file for d in together.diagnostics] == ["services/s5/.forge/project.cue"]
