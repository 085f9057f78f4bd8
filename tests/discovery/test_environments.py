"""repo.cue's environments block: parsed into the discovery document and the run plan, the
defaults when absent, and a bad block reported at its file:line."""

from __future__ import annotations

from datetime import timedelta

import pytest

from forge_core.domain.promotion import Environments

from .conftest import REPO_CUE, project_cue

FIRST = REPO_CUE.count("\n") + 1  # the line of the block's first line, appended to REPO_CUE

BLOCK = """environments: {
	dev: {autoDeploy: true}
	qa: {from: "dev", branches: ["main", "release/*"]}
	production: {
		from: "qa"
		triggers: ["tag"]
		approval: {required: 2, roles: ["release-manager"], expiry: "72h"}
	}
}
"""


def test_an_environments_block_reaches_the_document_and_the_run_plan(discover, make_repo) -> None:
    repo = make_repo({".forge/repo.cue": REPO_CUE + BLOCK, "a/.forge/project.cue": project_cue()})
    document = discover(repo)
    assert document.ok, document.diagnostics
    environments = document.environments
    assert environments is not None
    assert environments.names == ("dev", "qa", "production")
    production = environments.get("production")
    assert (production.from_, production.triggers, production.approval.required) == ("qa", {"tag"}, 2)
    assert production.approval.expiry == timedelta(hours=72)
    assert environments.get("qa").branches == ("main", "release/*")
    plan = document.run_plan().model_dump(mode="json")
    assert Environments.model_validate(plan["environments"]) == environments  # as the API stores it


def test_without_a_block_the_defaults_apply(discover, make_repo) -> None:
    repo = make_repo({".forge/repo.cue": REPO_CUE, "a/.forge/project.cue": project_cue()})
    document = discover(repo)
    assert document.ok and document.environments is None
    assert document.run_plan().environments is None


@pytest.mark.parametrize(
    ("block", "line", "expected"),
    [
        ('environments: {\n\tdev: {}\n\tqa: {from: "stage"}\n}\n', FIRST + 2,
         "promoted from unknown environment 'stage'; known: dev, qa"),
        ('environments: {\n\tdev: {}\n\tqa: {}\n}\n', FIRST,
         "exactly one environment has no 'from' (the first one); found 2: dev, qa"),
        ('environments: {\n\tdev: {}\n\ta: {from: "b"}\n\tb: {from: "a"}\n}\n', FIRST + 2,
         "'from' forms a cycle"),
        ('environments: {\n\tdev: {colour: "red"}\n}\n', FIRST + 1, "field not allowed"),
        ('environments: {\n\tdev: {approval: {expiry: "3 days"}}\n}\n', FIRST + 1, "expiry"),
        ('environments: {\n\tdev: {triggers: ["sometimes"]}\n}\n', FIRST + 1, "triggers"),
    ],
)
def test_a_bad_block_is_reported_at_its_line(discover, make_repo, block: str, line: int, expected: str) -> None:
    repo = make_repo({".forge/repo.cue": REPO_CUE + block, "a/.forge/project.cue": project_cue()})
    document = discover(repo)
    assert document.diagnostics, "the bad block was accepted"
    diagnostic = document.diagnostics[0]
    assert (diagnostic.file, diagnostic.line) == (".forge/repo.cue", line), diagnostic
    assert expected in diagnostic.message
    assert document.projects == ()  # nothing is planned on a repo.cue that does not validate
