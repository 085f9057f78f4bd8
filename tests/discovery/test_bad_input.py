"""Bad configuration: each problem is a diagnostic naming file and line; the rest is still planned."""

from __future__ import annotations

import pytest

from forge_core.adapters.git import GitError

from .conftest import REPO_CUE, project_cue, write_commit


def where(document) -> list[tuple[str, int | None]]:
    return [(d.file, d.line) for d in document.diagnostics]


def planned(document) -> list[str]:
    return [p.project.name for p in document.projects]


def test_malformed_cue_is_reported_at_its_line_and_other_projects_are_planned(discover, make_repo) -> None:
    repo = make_repo({
        ".forge/repo.cue": REPO_CUE,
        "a/.forge/project.cue": project_cue(),
        "b/.forge/project.cue": "package project\n\nphases: test: steps: [{name: \"x\"\nx: 1\n",
        "c/.forge/project.cue": project_cue(),
    })
    document = discover(repo)
    assert where(document) == [("b/.forge/project.cue", 4)]
    assert "missing ','" in document.diagnostics[0].message
    assert planned(document) == ["a", "c"]


def test_schema_violations_are_all_reported_with_lines(discover, make_repo) -> None:
    repo = make_repo({
        ".forge/repo.cue": REPO_CUE,
        "a/.forge/project.cue": project_cue('colour: "blue"\nartifacts: x: {type: 3}\n'),
    })
    document = discover(repo)
    messages = {(d.line, d.message) for d in document.diagnostics}
    assert (4, "colour: field not allowed by the schema") in messages
    assert any(line == 5 and "type" in message for line, message in messages)
    assert planned(document) == []


@pytest.mark.parametrize(
    ("body", "line", "expected"),
    [
        ('phases: deploy: steps: []\n', 4, "unknown phase (not in repo.cue) 'deploy'; known: build, test"),
        ('phases: build: steps: [{name: "b", action: "make"}]\n', 4, "unknown step action 'make'; known: "),
        ('artifacts: x: {type: "jar", producer: earthly: {target: "+build"}}\n', 4,
         "unknown artifact type 'jar'; known: "),
        ('artifacts: x: {type: "binary", producer: earthly: {target: "+build"}, publishers: ["nowhere"]}\n', 4,
         "unknown publisher (not in repo.cue) 'nowhere'; known: bucket, images"),
        ('artifacts: x: {type: "binary", producer: gradle: {}}\n', 4, "unknown producer 'gradle'; known: "),
        ('release: on: [{sometimes: true}]\n', 4, "unknown release trigger 'sometimes'; known: "),
        ('release: on: [{branch: "main", tag: true}]\n', 4, "exactly one trigger type, like {branch: \"main\"} (got: "
         "branch, tag)"),
        ('artifacts: x: {type: "binary", producer: {}}\n', 4,
         "artifact 'x' needs exactly one producer kind (got: none)"),
        ('phases: build: steps: [{name: "b", action: "earthly", timeout: "5 minutes"}]\n', 4,
         "'5 minutes' is not a duration"),
        ('artifacts: x: {type: "binary", producer: earthly: {target: "+build"}, publishers: ["images"]}\n', 4,
         "publisher 'images' (docker) of artifact 'x' accepts container, not 'binary'"),
    ],
)
def test_unknown_names_list_the_known_ones(discover, make_repo, body: str, line: int, expected: str) -> None:
    repo = make_repo({".forge/repo.cue": REPO_CUE, "a/.forge/project.cue": project_cue(body)})
    document = discover(repo)
    assert len(document.diagnostics) == 1, document.diagnostics
    diagnostic = document.diagnostics[0]
    assert (diagnostic.file, diagnostic.line) == ("a/.forge/project.cue", line)
    assert expected in diagnostic.message
    if "known: " in expected and expected.endswith("known: "):
        assert diagnostic.message.split("known: ")[1]  # the installed names are listed


def test_unknown_publisher_type_in_repo_cue_stops_discovery(discover, make_repo) -> None:
    repo = make_repo({
        ".forge/repo.cue": REPO_CUE.replace('type: "s3"', 'type: "ftp"'),
        "a/.forge/project.cue": project_cue(),
    })
    document = discover(repo)
    (diagnostic,) = document.diagnostics
    assert (diagnostic.file, diagnostic.line) == (".forge/repo.cue", 11)
    assert diagnostic.message.startswith("unknown publisher type 'ftp'; known: ")
    assert "s3" in diagnostic.message
    assert document.projects == ()


def test_malformed_repo_cue_is_reported_at_its_line(discover, make_repo) -> None:
    files = {".forge/repo.cue": REPO_CUE.replace("test: {group: 1}", "test: {group: 1")}
    files.update({f"p{i}/.forge/project.cue": project_cue() for i in range(6)})
    document = discover(make_repo(files))
    assert [(d.file, d.line) for d in document.diagnostics] == [(".forge/repo.cue", 12)]  # where CUE says
    assert document.projects == ()


def test_two_projects_with_one_name(discover, make_repo) -> None:
    repo = make_repo({
        ".forge/repo.cue": REPO_CUE,
        "services/api/.forge/project.cue": project_cue(),
        "legacy/api/.forge/project.cue": project_cue(),
        "web/.forge/project.cue": project_cue(),
    })
    document = discover(repo)
    assert sorted(d.file for d in document.diagnostics) == [
        "legacy/api/.forge/project.cue", "services/api/.forge/project.cue"
    ]
    assert "two projects are named 'api'" in document.diagnostics[0].message
    assert planned(document) == ["web"]


def test_forge_folder_without_project_cue(discover, make_repo) -> None:
    repo = make_repo({
        ".forge/repo.cue": REPO_CUE,
        "a/.forge/README.md": "nothing here\n",
        "b/.forge/project.cue": project_cue(),
    })
    document = discover(repo)
    assert where(document) == [("a/.forge", None)]
    assert "without project.cue" in document.diagnostics[0].message
    assert planned(document) == ["b"]


def test_repository_without_repo_cue(discover, make_repo) -> None:
    repo = make_repo({"a/.forge/project.cue": project_cue()})
    document = discover(repo)
    assert where(document) == [(".forge/repo.cue", None)]
    assert "no .forge/repo.cue" in document.diagnostics[0].message


def test_missing_package_clause(discover, make_repo) -> None:
    repo = make_repo({".forge/repo.cue": REPO_CUE, "a/.forge/project.cue": "// hi\nphases: {}\n"})
    document = discover(repo)
    assert where(document) == [("a/.forge/project.cue", 2)]
    assert "package clause" in document.diagnostics[0].message


def test_non_existent_commit_names_the_ref(discover, make_repo) -> None:
    repo = make_repo({".forge/repo.cue": REPO_CUE})
    with pytest.raises(GitError) as raised:
        discover(repo, commit="0123456789abcdef0123456789abcdef01234567")
    assert raised.value.where == "0123456789abcdef0123456789abcdef01234567"
    with pytest.raises(GitError, match=r"no tag 'nope/v1\.0\.0'"):
        discover(repo, tag="nope/v1.0.0")


def test_tag_that_matches_no_project(discover, make_repo) -> None:
    repo = make_repo(
        {".forge/repo.cue": REPO_CUE, "a/.forge/project.cue": project_cue("release: on: [{tag: true}]\n")},
        tags=("zzz/v1.0.0",),
    )
    document = discover(repo, tag="zzz/v1.0.0")
    assert where(document) == [("refs/tags/zzz/v1.0.0", None)]
    assert "matches no project" in document.diagnostics[0].message
    assert "projects: a" in document.diagnostics[0].message
    assert planned(document) == ["a"]
    assert not document.projects[0].release.release


def test_uncommitted_files_never_leak_in(discover, make_repo) -> None:
    repo = make_repo({".forge/repo.cue": REPO_CUE, "a/.forge/project.cue": project_cue()})
    (repo / "a/.forge/project.cue").write_text("this is { not cue")
    (repo / "b/.forge").mkdir(parents=True)
    (repo / "b/.forge/project.cue").write_text(project_cue())
    document = discover(repo)
    assert document.diagnostics == ()
    assert planned(document) == ["a"]


def test_errors_in_many_projects_are_all_found(discover, make_repo) -> None:
    files = {".forge/repo.cue": REPO_CUE}
    for index in range(12):
        files[f"p{index:02}/.forge/project.cue"] = project_cue()
    files["p03/.forge/project.cue"] = "package project\nphases: {\n"  # unbalanced
    files["p07/.forge/project.cue"] = project_cue("phases: nope: steps: []\n")
    files["p10/.forge/project.cue"] = "package project\nphases: test: steps: [{name: 1}]]\n"
    document = discover(make_repo(files))
    assert sorted({d.file for d in document.diagnostics}) == [
        "p03/.forge/project.cue", "p07/.forge/project.cue", "p10/.forge/project.cue"
    ]
    assert len(document.projects) == 9


def test_changed_commit_is_read_not_the_checkout(discover, make_repo) -> None:
    repo = make_repo({".forge/repo.cue": REPO_CUE, "a/.forge/project.cue": project_cue()})
    first = write_commit(repo, {"a/.forge/project.cue": project_cue("colour: 1\n")}, "break a")
    assert discover(repo, commit=first).diagnostics
    assert discover(repo, commit="HEAD~1").diagnostics == ()


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ('secrets: {"not-an-env": {provider: "env", secretName: "X"}}', "not-an-env"),
        ("retries: {attempts: -1}", "attempts"),
        ('retries: {attempts: 1, delay: "soon"}', "delay"),
        ('retries: {attempts: 1, filters: ["(unclosed"]}', "retry filter '(unclosed' is not a regular expression"),
    ],
)
def test_a_bad_step_secret_or_retry_is_reported_at_its_line(
    discover, make_repo, step: str, expected: str
) -> None:
    body = f'phases: build: steps: [{{name: "b", action: "earthly", {step}}}]\n'
    repo = make_repo({".forge/repo.cue": REPO_CUE, "a/.forge/project.cue": project_cue(body)})
    document = discover(repo)
    assert [(d.file, d.line) for d in document.diagnostics] == [("a/.forge/project.cue", 4)], document.diagnostics
    assert expected in document.diagnostics[0].message
    assert planned(document) == []


def test_a_step_secret_without_its_name_is_reported_naming_the_field(discover, make_repo) -> None:
    body = 'phases: build: steps: [{name: "b", action: "earthly", secrets: {TOKEN: {provider: "env"}}}]\n'
    repo = make_repo({".forge/repo.cue": REPO_CUE, "a/.forge/project.cue": project_cue(body)})
    (diagnostic,) = discover(repo).diagnostics
    assert diagnostic.file == "a/.forge/project.cue"
    assert "phases.build.steps.0.secrets.TOKEN.secretName: incomplete value" in diagnostic.message
