from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from forge_core.sdk import ArtifactSpec, ExecutionContext, Family, ProducedArtifact, ProjectRef, PublishTarget
from forge_core.testing import PluginHost
from forge_core.testing.contracts import ProducerContract, PublisherContract

BUILD = {"isolation": False}  # the test environment has setuptools; nothing is downloaded


def build(host: PluginHost, workdir: Path, project: str, name: str = "contract") -> ProducedArtifact:
    spec = ArtifactSpec(name=name, type="python", producer="python", producer_settings=BUILD)
    producer = host.create(Family.PRODUCER, "python")
    return producer.produce(spec, ProjectRef(name=name, path=project), "0" * 40, ExecutionContext(workdir=workdir))


class TestPypiPublisher(PublisherContract):
    plugin_id = "forge_pypi"
    distribution = "catalyst-forge-pypi"
    names = ("pypi",)

    @pytest.fixture(autouse=True)
    def _index(self, pypi_index: Any, python_project: Any) -> None:
        self.index = pypi_index
        self.write_project = python_project

    def target_settings(self, name: str, tmp_path: Path) -> dict[str, Any]:
        return {"repository": self.index.url}

    def artifact(self, name: str, tmp_path: Path) -> ProducedArtifact:
        self.write_project(tmp_path / "contract", name="acme-contract", version="1.0.0")
        return build(self.loaded, tmp_path, "contract")

    def case(self, name: str, tmp_path: Path) -> tuple[ProducedArtifact, PublishTarget, ExecutionContext]:
        artifact, target, ctx = super().case(name, tmp_path)
        secrets = {"username": self.index.username, "password": self.index.password}
        return artifact, target, ExecutionContext(workdir=ctx.workdir, secrets=secrets, stop=ctx.stop)

    def verify(self, name: str, result: Any, case: Any) -> None:
        assert result.uri == f"{self.index.simple}acme-contract/"
        assert sorted(p.name for p in self.index.packages.iterdir() if p.name.startswith("acme_contract")) == [
            "acme_contract-1.0.0-py3-none-any.whl", "acme_contract-1.0.0.tar.gz"]


class TestPythonProducer(ProducerContract):
    plugin_id = "forge_pypi"
    distribution = "catalyst-forge-pypi"
    names = ("python",)

    @pytest.fixture(autouse=True)
    def _writer(self, python_project: Any) -> None:
        self.write_project = python_project

    def producer_settings(self, name: str, tmp_path: Path) -> dict[str, Any]:
        return BUILD

    def project(self, name: str, tmp_path: Path) -> ProjectRef:
        self.write_project(tmp_path / "demo", name="acme-demo", version="2.1")
        return ProjectRef(name="demo", path="demo")

    def verify(self, name: str, result: Any, case: Any) -> None:
        assert [p.name for p in result.files] == ["acme_demo-2.1-py3-none-any.whl", "acme_demo-2.1.tar.gz"]
        assert result.metadata["version"] == "2.1"


def test_the_python_artifact_type_comes_from_the_core(forge_installed_host: PluginHost) -> None:
    assert forge_installed_host.get(Family.ARTIFACT_TYPE, "python").owner.plugin == "core.artifact_types"
    assert forge_installed_host.get(Family.PUBLISHER, "pypi").options["artifact_types"] == ("python",)
    assert forge_installed_host.get(Family.PRODUCER, "python").options["artifact_types"] == ("python",)


def test_a_pypi_target_names_its_index_by_url(forge_installed_host: PluginHost) -> None:
    schema = forge_installed_host.get(Family.PUBLISHER, "pypi").options["settings"]
    assert schema.model_validate({"repository": "https://pypi.acme.test/simple/"}).repository
    for wrong in ({}, {"repository": "pypi.acme.test"}, {"repository": "https://x", "url": "https://x"},
                  {"repository": "https://x/", "attempts": 0}):
        with pytest.raises(ValidationError):
            schema.model_validate(wrong)


def test_the_simple_index_is_found_from_the_upload_url(forge_installed_host: PluginHost) -> None:
    schema = forge_installed_host.get(Family.PUBLISHER, "pypi").options["settings"]
    assert schema.model_validate({"repository": "http://127.0.0.1:1"}).simple_url() == "http://127.0.0.1:1/simple/"
    assert schema.model_validate({"repository": "http://h/simple/"}).simple_url() == "http://h/simple/"
    given = {"repository": "http://h/legacy/", "index": "http://h/simple/"}
    assert schema.model_validate(given).simple_url() == "http://h/simple/"
