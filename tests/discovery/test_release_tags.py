"""A commit carrying several release tags: each project is released by its own, the highest wins."""

from __future__ import annotations

import pytest

from forge_core.domain.models import SourceEvent
from forge_core.domain.triggers import release_tag, version_key

from .conftest import REPO_CUE, project_cue

TAGGED = project_cue("release: on: [{tag: true}]\n")


def released(document) -> dict[str, str | None]:
    return {p.project.name: p.release.version for p in document.projects if p.release.release}


@pytest.fixture
def two_projects(make_repo):
    def make(*tags: str, strategy: str = "monorepo"):
        files = {
            ".forge/repo.cue": REPO_CUE.replace('"monorepo"', f'"{strategy}"'),
            "api/.forge/project.cue": TAGGED,
            "web/.forge/project.cue": TAGGED,
            "docs/.forge/project.cue": TAGGED,
        }
        return make_repo(files, tags=tags)

    return make


def test_each_project_is_released_by_its_own_tag_on_one_commit(discover, two_projects) -> None:
    document = discover(two_projects("api/v1.2.0", "web/v0.3.0", "nightly"))
    assert document.diagnostics == ()
    assert (document.event.tag, document.event.tags) == ("api/v1.2.0", ("api/v1.2.0", "web/v0.3.0"))
    assert released(document) == {"api": "1.2.0", "web": "0.3.0"}
    reasons = {p.project.name: p.release.reason for p in document.projects}
    assert reasons["web"] == "tag 'web/v0.3.0' releases version 0.3.0"
    assert "none of the tags api/v1.2.0, web/v0.3.0 is a release tag of this project" in reasons["docs"]


def test_the_event_of_one_tag_releases_every_project_tagged_on_its_commit(discover, two_projects) -> None:
    document = discover(two_projects("api/v1.2.0", "web/v0.3.0"), tag="web/v0.3.0")
    assert document.event.tag == "web/v0.3.0"
    assert released(document) == {"api": "1.2.0", "web": "0.3.0"}


def test_two_tags_of_one_project_release_the_highest_version(discover, two_projects) -> None:
    document = discover(two_projects("api/v1.9.0", "api/v1.10.0", "api/v1.10.0-rc.1"))
    assert released(document) == {"api": "1.10.0"}
    api = next(p for p in document.projects if p.project.name == "api")
    assert api.release.reason == (
        "tag 'api/v1.10.0' releases version 1.10.0 (the highest of this project's tags on the commit: "
        "api/v1.10.0, api/v1.10.0-rc.1, api/v1.9.0)"
    )


def test_with_tag_all_the_highest_bare_tag_releases_every_project(discover, two_projects) -> None:
    document = discover(two_projects("v2.0.0", "v2.1.0", strategy="tag-all"))
    assert released(document) == {"api": "2.1.0", "docs": "2.1.0", "web": "2.1.0"}


def test_every_tag_that_matches_no_project_is_reported(discover, two_projects) -> None:
    document = discover(two_projects("api/v1.0.0", "cli/v1.0.0", "zed/v0.1.0"))
    assert [(d.file, d.message.split(" (")[0]) for d in document.diagnostics] == [
        ("refs/tags/cli/v1.0.0", "tag 'cli/v1.0.0' matches no project"),
        ("refs/tags/zed/v0.1.0", "tag 'zed/v0.1.0' matches no project"),
    ]
    assert released(document) == {"api": "1.0.0"}


def test_semantic_version_precedence() -> None:
    ordered = ["0.9.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta.2", "1.0.0-beta.11",
               "1.0.0-rc.1", "1.0.0", "1.0.1+build.5", "1.2.0", "1.10.0"]
    shuffled = ordered[5:] + ordered[:5]
    assert sorted(shuffled, key=version_key) == ordered


def test_release_tag_prefers_the_highest_and_lists_them_all() -> None:
    event = SourceEvent(repository="r", commit="c", tag="api/v1.2.0", tags=("api/v1.2.0", "api/v1.3.0", "web/v1.0.0"))
    assert release_tag(event, "api") == ("api/v1.3.0", "1.3.0", ("api/v1.2.0", "api/v1.3.0"))
    assert release_tag(event, "docs") is None
    assert SourceEvent(repository="r", commit="c", tag="x").all_tags() == ("x",)
