import pytest
from pydantic import ValidationError

from forge_core.sdk import Family
from forge_core.testing import PluginHost
from forge_core.testing.contracts import PublisherContract


class TestGithubPublisher(PublisherContract):
    plugin_id = "forge_github"
    distribution = "catalyst-forge-github"
    names = ("github",)
    implemented = False


def test_a_github_target_names_owner_and_repository(forge_installed_host: PluginHost) -> None:
    schema = forge_installed_host.get(Family.PUBLISHER, "github").options["settings"]
    assert schema.model_validate({"repository": "acme/monorepo"}).repository == "acme/monorepo"
    for wrong in ({}, {"repository": "monorepo"}, {"repository": "acme/monorepo", "repo": "x"}):
        with pytest.raises(ValidationError):
            schema.model_validate(wrong)
