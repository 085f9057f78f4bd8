"""Every `.cue` file of a project's `.forge/` folder, and packages imported from the repository's
CUE module (`cue.mod/`): evaluated together, diagnostics at the right file:line, cache keyed on them."""

from __future__ import annotations

from pathlib import Path

from forge_core.adapters.git import CommitReader, WorkingTreeReader
from forge_core.builtin.discovery import resolve_event
from forge_core.services.cue_module import ModuleTree

from .conftest import REPO_CUE, project_cue, write_commit

MODULE = 'module: "acme.example/monorepo"\n'
DEFAULTS = 'package defaults\n\nunitTimeout: "3m"\n#Step: {name: string, action: "earthly", target: string, ...}\n'
USES_DEFAULTS = (
    'package project\n\nimport "acme.example/monorepo/cue/defaults"\n\n'
    "phases: test: steps: [defaults.#Step & {name: \"unit\", target: \"+test\", timeout: defaults.unitTimeout}]\n"
)


def steps(document, project: str) -> dict[str, dict]:
    return {
        f"{t.phase}/{s.name}": s.model_dump(mode="json")
        for g in document.groups for t in g.tasks if t.project.name == project for s in t.steps
    }


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


# --- every .cue file of .forge/ ------------------------------------------------------------------

ARTIFACTS = (
    "package project\n\n"
    "// a second file of the package: shares the top level with project.cue\n"
    'artifacts: app: {type: "container", producer: earthly: target: _target, publishers: ["images"]}\n'
)


def test_every_cue_file_of_a_forge_folder_is_one_package(discover, make_repo) -> None:
    project = project_cue('_target: "+image"\n')  # a hidden field the other file reads
    repo = make_repo({
        ".forge/repo.cue": REPO_CUE,
        "app/.forge/project.cue": project,
        "app/.forge/artifacts.cue": ARTIFACTS,
        "app/.forge/_scratch.cue": "not CUE at all {",  # CUE's loader skips _ files, and so do we
        "app/.forge/notes.txt": "not read\n",
    })
    document = discover(repo)
    assert document.diagnostics == ()
    (plan,) = document.projects
    assert plan.config_file == "app/.forge/project.cue"
    (artifact,) = plan.artifacts
    assert (artifact.spec.name, artifact.spec.type) == ("app", "container")
    assert artifact.spec.producer_settings == {"target": "+image"}
    assert [p.name for p in artifact.publishers] == ["images"]
    assert set(steps(document, "app")) == {"test/unit"}


def test_an_error_in_a_second_file_names_that_file_and_line(discover, make_repo) -> None:
    broken = ARTIFACTS.replace('type: "container"', "type: 7")
    repo = make_repo({
        ".forge/repo.cue": REPO_CUE,
        "app/.forge/project.cue": project_cue('_target: "+image"\n'),
        "app/.forge/artifacts.cue": broken,
        "ok/.forge/project.cue": project_cue(),
    })
    document = discover(repo)
    (diagnostic,) = document.diagnostics
    assert diagnostic.file == "app/.forge/artifacts.cue"
    assert diagnostic.line == line_of(broken, "type: 7")
    assert diagnostic.project == "app"
    assert [p.project.name for p in document.projects] == ["ok"]


def test_a_field_set_twice_in_two_files_is_a_conflict_at_the_second_file(discover, make_repo) -> None:
    repo = make_repo({
        ".forge/repo.cue": REPO_CUE,
        "app/.forge/project.cue": project_cue('name: "app"\n'),
        "app/.forge/name.cue": 'package project\n\nname: "other"\n',
    })
    (diagnostic,) = discover(repo).diagnostics
    assert (diagnostic.file, diagnostic.line, diagnostic.column) == ("app/.forge/name.cue", 3, 7)
    assert diagnostic.message == 'name: conflicting values "other" and "app"'


def test_a_syntax_error_in_a_second_file_is_found_by_halving(discover, make_repo) -> None:
    repo = make_repo({
        ".forge/repo.cue": REPO_CUE,
        "a/.forge/project.cue": project_cue(),
        "b/.forge/project.cue": project_cue(),
        "b/.forge/extra.cue": "package project\n\nfoo: {\n",
        "c/.forge/project.cue": project_cue(),
    })
    document = discover(repo)
    assert [d.file for d in document.diagnostics] == ["b/.forge/extra.cue"]
    assert sorted(p.project.name for p in document.projects) == ["a", "c"]


def test_files_of_one_forge_folder_must_share_its_package(discover, make_repo) -> None:
    repo = make_repo({
        ".forge/repo.cue": REPO_CUE,
        "app/.forge/project.cue": project_cue(),
        "app/.forge/other.cue": "// note\npackage other\n\nx: 1\n",
    })
    (diagnostic,) = discover(repo).diagnostics
    assert (diagnostic.file, diagnostic.line) == ("app/.forge/other.cue", 2)
    assert "package other differs from app/.forge/project.cue's package project" in diagnostic.message


def test_a_new_or_changed_second_file_invalidates_only_its_project(discover, make_repo) -> None:
    repo = make_repo({
        ".forge/repo.cue": REPO_CUE,
        "a/.forge/project.cue": project_cue(),
        "b/.forge/project.cue": project_cue(),
    })
    assert discover(repo).evaluated == 2
    step = 'phases: build: steps: [{name: "pack", action: "earthly", target: "+pack"}]\n'
    write_commit(repo, {"b/.forge/build.cue": "package project\n\n" + step}, "add a file")
    added = discover(repo)
    assert (added.evaluated, added.cached) == (1, 1)
    assert steps(added, "b")["build/pack"]["target"] == "+pack"
    write_commit(repo, {"b/.forge/build.cue": "package project\n\n" + step.replace("+pack", "+pack2")}, "edit it")
    edited = discover(repo)
    assert (edited.evaluated, edited.cached) == (1, 1)
    assert steps(edited, "b")["build/pack"]["target"] == "+pack2"


# --- cue.mod imports --------------------------------------------------------------------------------


def module_repo(make_repo, **extra: str):
    return make_repo({
        ".forge/repo.cue": REPO_CUE,
        "cue.mod/module.cue": MODULE,
        "cue/defaults/defaults.cue": DEFAULTS,
        "svc/.forge/project.cue": USES_DEFAULTS,
        "plain/.forge/project.cue": project_cue(),
        **extra,
    })


def test_a_project_imports_a_package_of_the_repository_module(discover, make_repo) -> None:
    document = discover(module_repo(make_repo))
    assert document.diagnostics == ()
    unit = steps(document, "svc")["test/unit"]
    assert (unit["action"], unit["target"], unit["timeout"]) == ("earthly", "+test", "PT3M")


def test_imports_from_cue_mod_pkg_and_parent_folders_of_a_package(discover, make_repo) -> None:
    repo = module_repo(
        make_repo,
        **{
            "cue.mod/pkg/vendor.example/lib/lib.cue": 'package lib\n\nbuildTarget: "+vendored"\n',
            "cue/defaults/extra/extra.cue": "package defaults\n\nextraTarget: \"+extra\"\n",
            "cue/defaults/shared.cue": 'package defaults\n\nfromParent: "+parent"\n',  # same package, a parent
            "lib/.forge/project.cue": (
                'package project\n\nimport (\n\t"vendor.example/lib"\n'
                '\td "acme.example/monorepo/cue/defaults/extra:defaults"\n)\n\n'
                'phases: build: steps: [{name: "v", action: "earthly", target: lib.buildTarget},\n'
                '\t{name: "e", action: "earthly", target: d.extraTarget}, {name: "p", action: "earthly", '
                "target: d.fromParent}]\n"
            ),
        },
    )
    document = discover(repo)
    assert document.diagnostics == ()
    built = steps(document, "lib")
    assert [built[k]["target"] for k in ("build/v", "build/e", "build/p")] == ["+vendored", "+extra", "+parent"]


def test_an_error_inside_an_imported_package_names_its_file_and_line(discover, make_repo) -> None:
    broken = DEFAULTS.replace('unitTimeout: "3m"', "unitTimeout: 3")
    document = discover(module_repo(make_repo, **{"cue/defaults/defaults.cue": broken}))
    assert [p.project.name for p in document.projects] == ["plain"]
    (diagnostic,) = document.diagnostics
    assert (diagnostic.file, diagnostic.line, diagnostic.project) == ("cue/defaults/defaults.cue", 3, "svc")
    assert diagnostic.message.startswith("phases.test.steps.0.timeout: conflicting values 3 and")


def test_an_import_that_is_not_in_the_module_is_reported_at_its_line(discover, make_repo) -> None:
    missing = USES_DEFAULTS.replace("cue/defaults", "cue/nothere").replace("defaults.", "nothere.")
    document = discover(module_repo(make_repo, **{"svc/.forge/project.cue": missing}))
    (diagnostic,) = document.diagnostics
    assert (diagnostic.file, diagnostic.line) == ("svc/.forge/project.cue", 3)
    assert 'cannot find package "acme.example/monorepo/cue/nothere"' in diagnostic.message
    assert [p.project.name for p in document.projects] == ["plain"]


def test_without_a_module_an_import_is_not_found_and_adding_one_invalidates(discover, make_repo) -> None:
    repo = make_repo({".forge/repo.cue": REPO_CUE, "svc/.forge/project.cue": USES_DEFAULTS,
                      "plain/.forge/project.cue": project_cue()})
    first = discover(repo)
    assert [(d.file, d.line) for d in first.diagnostics] == [("svc/.forge/project.cue", 3)]
    write_commit(repo, {"cue.mod/module.cue": MODULE, "cue/defaults/defaults.cue": DEFAULTS}, "add the module")
    fixed = discover(repo)
    assert fixed.diagnostics == ()
    assert (fixed.evaluated, fixed.cached) == (1, 1)  # plain imports nothing: still cached


def test_a_change_to_an_imported_package_invalidates_its_importers_only(discover, make_repo) -> None:
    repo = module_repo(make_repo, **{"cue/other/other.cue": "package other\n\nx: 1\n"})
    assert discover(repo).evaluated == 2
    assert discover(repo).evaluated == 0
    write_commit(repo, {"cue/other/other.cue": "package other\n\nx: 2\n"}, "a package nobody imports")
    assert discover(repo).evaluated == 0
    write_commit(repo, {"cue/defaults/defaults.cue": DEFAULTS.replace('"3m"', '"4m"')}, "longer unit tests")
    changed = discover(repo)
    assert (changed.evaluated, changed.cached) == (1, 1)
    assert steps(changed, "svc")["test/unit"]["timeout"] == "PT4M"
    write_commit(repo, {"cue/defaults/more.cue": 'package defaults\n\nunitTimeout: "4m"\n'}, "a new file of it")
    assert discover(repo).evaluated == 1
    write_commit(repo, {"cue.mod/module.cue": MODULE + "// a comment\n"}, "module.cue changed")
    assert discover(repo).evaluated == 1


def test_repo_cue_may_import_the_module_and_its_change_reaches_every_project(discover, make_repo) -> None:
    repo_cue = REPO_CUE.replace(
        "package repo\n", 'package repo\n\nimport "acme.example/monorepo/cue/timeouts"\n'
    ).replace('build: {group: 2, timeout: "10m"}', "build: {group: 2, timeout: timeouts.build}")
    repo = module_repo(make_repo, **{".forge/repo.cue": repo_cue,
                                     "cue/timeouts/timeouts.cue": 'package timeouts\n\nbuild: "10m"\n'})
    first = discover(repo)
    assert first.diagnostics == ()
    assert {g.group: g.phases for g in first.groups}[2][0].timeout.total_seconds() == 600
    write_commit(repo, {"cue/timeouts/timeouts.cue": 'package timeouts\n\nbuild: "20m"\n'}, "longer builds")
    second = discover(repo)
    assert second.evaluated == 2
    assert {g.group: g.phases for g in second.groups}[2][0].timeout.total_seconds() == 1200


def test_validate_reads_module_files_from_the_working_tree(discover, make_repo, tmp_path: Path) -> None:
    repo = module_repo(make_repo)
    (repo / "cue/defaults/defaults.cue").write_text(DEFAULTS.replace('"3m"', '"5m"'))  # not committed
    reader = WorkingTreeReader(repo)
    entries = {e.path: e for e in reader.entries("HEAD")}
    assert {"cue.mod", "cue.mod/module.cue", "cue/defaults/defaults.cue", "svc/.forge"} <= set(entries)
    tree = ModuleTree(entries)
    assert tree.state(["cue/defaults"]) == [
        ("cue/defaults", [("cue/defaults/defaults.cue", entries["cue/defaults/defaults.cue"].oid)])
    ]
    discovery = discover.discovery
    event = resolve_event(CommitReader(repo), "repo", commit=None, branch="main", tag=None)
    document = discovery.discover(reader, event)
    assert steps(document, "svc")["test/unit"]["timeout"] == "PT5M"
