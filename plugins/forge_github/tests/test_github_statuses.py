"""The github notifier against the GitHub stand-in (commit status endpoints on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from forge_core.sdk import CommitStatus, NotifierOptions
from forge_core.testing.contracts import NotifierContract
from forge_github.statuses import GithubStatusError, GithubStatusNotifier
from forge_github.testing import GithubStandIn

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def github() -> Iterator[GithubStandIn]:
    with GithubStandIn(token="s3cret") as stand_in:
        yield stand_in


def status(state: str = "success", **changes: object) -> CommitStatus:
    values: dict[str, object] = {
        "repository": "acme/app", "commit_sha": SHA, "state": state, "context": "catalyst-forge",
        "description": "Pipeline succeeded", "target_url": "http://forge.local/runs/1",
        "run_id": "1",
    }
    values.update(changes)
    return CommitStatus.model_validate(values)


def options(github: GithubStandIn, token: str | None = "s3cret") -> NotifierOptions:
    return NotifierOptions(options={"api_url": github.url}, token=token)


class TestGithubNotifier(NotifierContract):
    plugin_id = "forge_github"
    distribution = "catalyst-forge-github"
    names = ("github",)

    @pytest.fixture(autouse=True)
    def receiver(self) -> Iterator[GithubStandIn]:
        with GithubStandIn(token="contract") as stand_in:
            self.stand_in = stand_in
            yield stand_in

    def options(self, name: str, tmp_path: Path) -> NotifierOptions:
        return NotifierOptions(options={"api_url": self.stand_in.url}, token="contract")

    def verify(self, name: str, result: Any, case: Any) -> None:
        status, _ = case
        received = self.stand_in.received(status.repository, status.commit_sha)
        assert [s["state"] for s in received] == ["success"]


def test_posts_the_status_to_the_commit(github: GithubStandIn) -> None:
    GithubStatusNotifier().send_commit_status(status("pending"), options(github))
    GithubStatusNotifier().send_commit_status(status("success"), options(github))
    received = github.received("acme/app", SHA)
    assert [s["state"] for s in received] == ["pending", "success"]
    assert received[1]["context"] == "catalyst-forge"
    assert received[1]["target_url"] == "http://forge.local/runs/1"
    url = f"{github.url}/repos/acme/app/commits/{SHA}/statuses"
    listed = httpx.get(url, headers={"Authorization": "Bearer s3cret"})
    assert [s["state"] for s in listed.json()] == ["success", "pending"]


def test_a_rejected_token_raises_with_the_status_code(github: GithubStandIn) -> None:
    with pytest.raises(GithubStatusError, match="401"):
        GithubStatusNotifier().send_commit_status(status(), options(github, token="wrong"))
    assert github.received("acme/app", SHA) == []


def test_github_down_raises_so_the_outbox_retries(github: GithubStandIn) -> None:
    github.stop()
    with pytest.raises(GithubStatusError, match="cannot reach"):
        GithubStatusNotifier().send_commit_status(status(), options(github))
    github.start()
    GithubStatusNotifier().send_commit_status(status(), options(github))
    assert len(github.received("acme/app", SHA)) == 1


def test_an_unknown_state_is_refused_before_sending(github: GithubStandIn) -> None:
    with pytest.raises(GithubStatusError, match="state"):
        GithubStatusNotifier().send_commit_status(status("bogus"), options(github))
    assert github.received("acme/app", SHA) == []


def test_long_descriptions_are_cut_to_githubs_limit(github: GithubStandIn) -> None:
    GithubStatusNotifier().send_commit_status(status(description="x" * 500), options(github))
    assert len(github.received("acme/app", SHA)[0]["description"]) == 140
