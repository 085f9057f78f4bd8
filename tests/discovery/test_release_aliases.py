"""``release.aliases`` of project.cue: the templates reach the plan (and so the release job), and
a bad one is reported at its file and line, naming the field."""

from __future__ import annotations

from .conftest import REPO_CUE, project_cue

RELEASE = 'release: {\n\ton: [{branch: "main"}]\n\taliases: ["latest", "{branch}-latest", "%s"]\n}\n'


def test_the_templates_reach_the_project_plan(discover, make_repo) -> None:
    repo = make_repo({".forge/repo.cue": REPO_CUE,
                      "a/.forge/project.cue": project_cue(RELEASE % "sha-{shortCommit}")})
    document = discover(repo)
    assert document.ok, document.diagnostics
    (plan,) = document.projects
    assert plan.aliases == ("latest", "{branch}-latest", "sha-{shortCommit}")
    assert plan.release.release


def test_a_project_without_aliases_has_none(discover, make_repo) -> None:
    repo = make_repo({".forge/repo.cue": REPO_CUE, "a/.forge/project.cue": project_cue()})
    (plan,) = discover(repo).projects
    assert plan.aliases == ()


def test_a_bad_template_is_reported_at_its_file_and_line(discover, make_repo) -> None:
    text = project_cue(RELEASE % "v{colour}")
    repo = make_repo({".forge/repo.cue": REPO_CUE, "a/.forge/project.cue": text})
    document = discover(repo)
    assert document.diagnostics, "the bad template was accepted"
    (diagnostic,) = document.diagnostics
    line = text.splitlines().index('\taliases: ["latest", "{branch}-latest", "v{colour}"]') + 1
    assert (diagnostic.file, diagnostic.line, diagnostic.project) == ("a/.forge/project.cue", line, "a")
    assert "alias template 'v{colour}': unknown placeholder {colour}" in diagnostic.message
    assert document.projects == ()


def test_aliases_that_are_not_strings_are_refused_by_the_schema(discover, make_repo) -> None:
    repo = make_repo({".forge/repo.cue": REPO_CUE,
                      "a/.forge/project.cue": project_cue('release: {on: [{branch: "main"}], aliases: [7]}\n')})
    document = discover(repo)
    assert document.diagnostics and document.diagnostics[0].file == "a/.forge/project.cue"
    assert "aliases" in str(document.diagnostics[0])
