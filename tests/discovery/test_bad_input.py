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


# --- limits: what one evaluation may read, take and cost ------------------------------------------

BOMB = "\n".join([
    "", '_a0: "xxxxxxxxxxxxxxxx"', *(f"_a{i}: _a{i - 1} + _a{i - 1}" for i in range(1, 30)),
    'phases: build: steps: [{name: "b", action: "earthly", target: _a29}]', "",
])
"""Each (hidden, so schema-allowed) field doubles the one before: about 8 GiB by _a29, a step's target."""
SLOW = (
    'import "list"\n_x: len([for a in list.Range(0,3000,1) for b in list.Range(0,3000,1) if a == b {a}])\n'
    'phases: build: steps: [{name: "s", action: "earthly", target: "+\\(_x)"}]\n'
)
"""Nine million iterations (a step's target): minutes of work in little memory."""


@pytest.fixture
def scratch_root(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """The temporary folder evaluations write to, private to the test."""
    import tempfile

    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture
def limited(host, tmp_path):
    """``limited(**cue_settings)``: discover like ``forge discover`` with an evaluator of its own limits."""
    from forge_core.adapters.cue import open_evaluator
    from forge_core.adapters.git import CommitReader
    from forge_core.builtin.discovery import new_discovery, resolve_event
    from forge_core.settings.cue import CueSettings

    opened = []

    def make(**limits):
        evaluator = open_evaluator(CueSettings(**limits))
        opened.append(evaluator)
        discovery = new_discovery(host.registry, evaluator, tmp_path / "limited-cache")

        def run(repo):
            reader = CommitReader(repo)
            return discovery.discover(reader, resolve_event(reader, reader.name, commit=None, branch=None, tag=None))

        return run

    yield make
    for evaluator in opened:
        evaluator.close()


def test_a_50_mb_file_is_refused_unread_naming_it_and_the_other_projects_are_planned(discover, make_repo) -> None:
    import tracemalloc

    huge = "package project\n\n" + "// a comment line, fifty bytes long, over and over\n" * (1024 * 1024)
    assert len(huge) > 50 * 1000 * 1000
    repo = make_repo({
        ".forge/repo.cue": REPO_CUE,
        "a/.forge/project.cue": project_cue(),
        "b/.forge/project.cue": project_cue(),
        "b/.forge/generated.cue": huge,
    })
    del huge
    tracemalloc.start()
    try:
        document = discover(repo)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    (diagnostic,) = document.diagnostics
    assert (diagnostic.file, diagnostic.line, diagnostic.project) == ("b/.forge/generated.cue", None, "b")
    assert diagnostic.message.startswith("the file is 51.0 MiB (53477393 bytes), over the limit of 1.0 MiB")
    assert "FORGE_CUE__MAX_FILE_BYTES" in diagnostic.message and "neither read nor evaluated" in diagnostic.message
    assert planned(document) == ["a"]
    assert peak < 20 * 1024 * 1024, f"discovery held {peak / 2**20:.0f} MiB: the file was read"
    assert discover(repo).diagnostics == document.diagnostics  # never cached as evaluated


def test_a_repo_cue_over_the_limit_is_the_one_diagnostic(limited, make_repo) -> None:
    repo = make_repo({".forge/repo.cue": REPO_CUE + "// pad\n" * 400, "a/.forge/project.cue": project_cue()})
    document = limited(max_file_bytes=2048)(repo)
    (diagnostic,) = document.diagnostics
    assert diagnostic.file == ".forge/repo.cue"
    assert "over the limit of 2048 bytes" in diagnostic.message
    assert document.projects == ()


def test_a_module_file_over_the_limit_fails_discovery_naming_it(limited, make_repo) -> None:
    from forge_core.adapters.cue import CueLimitError

    repo = make_repo({
        ".forge/repo.cue": REPO_CUE,
        "cue.mod/module.cue": 'module: "acme.example/m"\n',
        "cue/data/data.cue": "package data\n\nx: 1\n" + "// pad\n" * 400,
        "a/.forge/project.cue": project_cue().replace(
            "package project\n", 'package project\n\nimport "acme.example/m/cue/data"\n\nx: data.x\n'
        ),
    })
    with pytest.raises(CueLimitError) as caught:
        limited(max_file_bytes=2048)(repo)
    assert caught.value.where == "FORGE_CUE__MAX_FILE_BYTES"
    assert caught.value.message.startswith("cue/data/data.cue is ")
    assert "over the limit of 2048 bytes" in caught.value.message


def test_an_expansion_bomb_fails_discovery_naming_the_project_file(limited, make_repo, scratch_root) -> None:
    from forge_core.adapters.cue import CueLimitError

    files = {".forge/repo.cue": REPO_CUE, "b/.forge/project.cue": project_cue(BOMB)}
    files.update({f"p{i}/.forge/project.cue": project_cue() for i in range(2)})
    with pytest.raises(CueLimitError) as caught:
        limited(max_memory_mb=256)(make_repo(files))
    assert caught.value.where == "FORGE_CUE__MAX_MEMORY_MB"
    assert caught.value.message.startswith("the CUE evaluation ran out of memory under the cap of 256 MiB")
    # found among the three projects of the batch, by halving it
    assert caught.value.message.endswith(", evaluating b/.forge/project.cue (project b) with .forge/repo.cue")
    assert list(scratch_root.iterdir()) == []  # the killed evaluations' files are gone


def test_an_evaluation_past_the_timeout_fails_discovery_naming_the_project_file(
    limited, make_repo, scratch_root
) -> None:
    from forge_core.adapters.cue import CueLimitError

    repo = make_repo({".forge/repo.cue": REPO_CUE, "slow/.forge/project.cue": project_cue().replace(
        "package project\n", "package project\n\n" + SLOW)})
    with pytest.raises(CueLimitError) as caught:
        limited(timeout_seconds=4)(repo)
    assert caught.value.where == "FORGE_CUE__TIMEOUT_SECONDS"
    assert "did not finish within 4 s" in caught.value.message
    assert caught.value.message.endswith(
        ", evaluating slow/.forge/project.cue (project slow) with .forge/repo.cue"
    )
    assert list(scratch_root.iterdir()) == []


def test_a_timeout_in_a_batch_names_the_batch_files(limited, make_repo) -> None:
    from forge_core.adapters.cue import CueLimitError

    files = {".forge/repo.cue": REPO_CUE, "slow/.forge/project.cue": project_cue().replace(
        "package project\n", "package project\n\n" + SLOW)}
    files.update({f"p{i:02}/.forge/project.cue": project_cue() for i in range(12)})
    with pytest.raises(CueLimitError) as caught:
        limited(timeout_seconds=4)(make_repo(files))
    assert "evaluating .forge/repo.cue with the files of 13 projects in one batch: p00/.forge/project.cue" in (
        caught.value.message
    )
    assert caught.value.message.endswith(" and 3 more")
    assert caught.value.details["files"][0] == ".forge/repo.cue" and len(caught.value.details["files"]) == 14


def test_a_batch_over_the_input_limit_is_evaluated_in_halves(limited, make_repo) -> None:
    padded = project_cue() + "// a comment of about fifty bytes, again and again\n" * 40  # 2 KB
    files = {".forge/repo.cue": REPO_CUE, **{f"p{i:02}/.forge/project.cue": padded for i in range(40)}}
    document = limited(max_input_bytes=32 * 1024)(make_repo(files))  # the batch is over 80 KB
    assert document.diagnostics == ()
    assert len(planned(document)) == 40


def test_one_project_over_the_input_limit_fails_discovery_naming_it(limited, make_repo) -> None:
    from forge_core.adapters.cue import CueLimitError

    files = {".forge/repo.cue": REPO_CUE, "a/.forge/project.cue": project_cue(),
             "big/.forge/project.cue": project_cue() + "// pad\n" * 3000}
    with pytest.raises(CueLimitError) as caught:
        limited(max_input_bytes=16 * 1024)(make_repo(files))
    assert caught.value.where == "FORGE_CUE__MAX_INPUT_BYTES"
    assert caught.value.message.endswith(", evaluating big/.forge/project.cue (project big) with .forge/repo.cue")
