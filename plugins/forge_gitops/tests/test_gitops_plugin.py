from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from forge_core.sdk import JobResult, JobStatus, parse_release_pointer
from forge_core.testing.contracts import JobHandlerContract
from forge_gitops.testing import GitOpsRemote

COMMIT = "c" * 40


class TestDeploymentHandler(JobHandlerContract):
    """Built by the registry from the environment, as a worker does: the embedded repository."""

    plugin_id = "forge_gitops"
    distribution = "catalyst-forge-gitops"
    names = ("deployment",)
    implemented = True

    @pytest.fixture(autouse=True)
    def _embedded(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("FORGE_GITOPS__URL", raising=False)
        monkeypatch.setenv("FORGE_GITOPS__STATE_DIR", str(tmp_path / "state"))
        self.state = tmp_path / "state"

    def payload(self, name: str, tmp_path: Path) -> dict[str, Any]:
        return {"environment": "dev", "actor": "contract", "deployments": [
            {"repository": "acme/app", "project": "api", "release_commit": COMMIT, "release_number": 1,
             "release_id": "r-1"}]}

    def verify(self, name: str, result: Any, case: Any) -> None:
        assert isinstance(result, JobResult)
        assert result.status is JobStatus.SUCCESS, result.error
        bare = GitOpsRemote(url=str(self.state / "gitops.git"), path=self.state / "gitops.git")
        path = "environments/dev/app-api/release.yaml"
        assert parse_release_pointer(bare.file(path), path).release == COMMIT
        assert bare.history()[0] == result.output["gitops_commit"]
