from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from forge_core.sdk import ExecutionContext, Family, ProducedArtifact, PublishTarget
from forge_core.testing import PluginHost
from forge_core.testing.contracts import PublisherContract
from forge_github.testing import GithubStandIn


class TestGithubPublisher(PublisherContract):
    plugin_id = "forge_github"
    distribution = "catalyst-forge-github"
    names = ("github",)

    @pytest.fixture(autouse=True)
    def _server(self) -> Iterator[None]:
        with GithubStandIn(token="contract-token") as stand_in:
            self.stand_in = stand_in
            yield

    def target_settings(self, name: str, tmp_path: Path) -> dict[str, Any]:
        return {"repository": "acme/contract", "apiUrl": self.stand_in.url}

    def artifact(self, name: str, tmp_path: Path) -> ProducedArtifact:
        artifact = super().artifact(name, tmp_path)
        return artifact.model_copy(update={"metadata": {"tag": "v1.0.0"}})

    def case(self, name: str, tmp_path: Path) -> tuple[ProducedArtifact, PublishTarget, ExecutionContext]:
        artifact, target, _ = super().case(name, tmp_path)
        return artifact, target, ExecutionContext(workdir=tmp_path, secrets={"default": "contract-token"})

    def verify(self, name: str, result: Any, case: Any) -> None:
        artifact, _, _ = case
        release = self.stand_in.release("acme/contract", "v1.0.0")
        assert release is not None
        [asset] = release["assets"]
        assert asset["name"] == artifact.files[0].name
        assert self.stand_in.content(asset["id"]) == artifact.files[0].read_bytes()
        assert result.uri == asset["browser_download_url"] and result.digest == asset["digest"]


def test_a_github_target_names_owner_and_repository(forge_installed_host: PluginHost) -> None:
    schema = forge_installed_host.get(Family.PUBLISHER, "github").options["settings"]
    assert schema.model_validate({"repository": "acme/monorepo"}).repository == "acme/monorepo"
    for wrong in ({}, {"repository": "monorepo"}, {"repository": "acme/monorepo", "repo": "x"}):
        with pytest.raises(ValidationError):
            schema.model_validate(wrong)
