"""Incremental discovery: only what changed is evaluated again; results stay the same."""

from __future__ import annotations

from .conftest import REPO_CUE, project_cue, write_commit


def test_warm_rediscovery_evaluates_nothing_and_gives_the_same_plan(discover, example) -> None:
    cold = discover(example)
    warm = discover(example)
    assert (cold.evaluated, cold.cached) == (4, 0)
    assert (warm.evaluated, warm.cached) == (0, 4)
    assert warm.model_dump(exclude={"evaluated", "cached"}) == cold.model_dump(exclude={"evaluated", "cached"})


def test_a_changed_project_is_the_only_one_evaluated(discover, make_repo) -> None:
    repo = make_repo({
        ".forge/repo.cue": REPO_CUE,
        "a/.forge/project.cue": project_cue(),
        "b/.forge/project.cue": project_cue(),
        "c/.forge/project.cue": project_cue(),
    })
    assert discover(repo).evaluated == 3
    write_commit(repo, {"b/.forge/project.cue": project_cue('phases: build: steps: [{name: "x", action: "earthly"}]\n'),
                        "a/README.md": "unrelated\n"}, "change b")
    again = discover(repo)
    assert (again.evaluated, again.cached) == (1, 2)
    assert {t.id for g in again.groups for t in g.tasks} >= {"b/build"}


def test_repo_cue_change_evaluates_every_project(discover, make_repo) -> None:
    repo = make_repo({".forge/repo.cue": REPO_CUE, "a/.forge/project.cue": project_cue(),
                      "b/.forge/project.cue": project_cue()})
    discover(repo)
    write_commit(repo, {".forge/repo.cue": REPO_CUE.replace('timeout: "10m"', 'timeout: "20m"')}, "longer builds")
    assert discover(repo).evaluated == 2


def test_projects_reading_runtime_values_follow_the_commit(discover, make_repo) -> None:
    uses = project_cue('deploy: resources: [{apiVersion: "v1", kind: "ConfigMap", metadata: name: "c", '
                       'data: commit: #forge.commit}]\n')
    repo = make_repo({".forge/repo.cue": REPO_CUE, "static/.forge/project.cue": project_cue(),
                      "dynamic/.forge/project.cue": uses})
    discover(repo)
    second = write_commit(repo, {"notes.txt": "x\n"}, "unrelated change")
    document = discover(repo)
    assert (document.evaluated, document.cached) == (1, 1)
    dynamic = {p.project.name: p for p in document.projects}["dynamic"]
    assert dynamic.resources[0]["data"]["commit"] == second


def test_broken_projects_are_cached_with_their_diagnostics(discover, make_repo) -> None:
    repo = make_repo({".forge/repo.cue": REPO_CUE, "a/.forge/project.cue": project_cue("colour: 1\n")})
    cold = discover(repo)
    warm = discover(repo)
    assert warm.evaluated == 0
    assert warm.diagnostics == cold.diagnostics != ()
