"""The schema of an implementation's settings: declared with ``settings=``, checked key by key."""

from __future__ import annotations

import pytest
from pydantic import Field

from forge_core.domain.errors import PluginLoadError
from forge_core.domain.plugin_settings import SettingsProblem, settings_problems
from forge_core.plugin.family import Family
from forge_core.plugin.host import PluginHost, PluginInfo, Status, load_plugins
from forge_core.plugin.registry import Owner, PublisherRegistrar
from forge_core.sdk import ArtifactTypeRegistrar, SettingsModel, hookimpl
from forge_core.settings import PluginSettings


class Mirror(SettingsModel):
    url: str
    read_only: bool = False


class RegistrySettings(SettingsModel):
    registry: str
    image_name: str | None = Field(None, min_length=1)
    mirrors: list[Mirror] = []
    labels: dict[str, Mirror] = {}


def test_keys_are_written_in_camel_case_and_unknown_ones_list_the_known() -> None:
    assert settings_problems(RegistrySettings, {"registry": "r", "imageName": "api"}) == []
    assert settings_problems(RegistrySettings, {"registry": "r", "image_name": "api"}) == []  # the Python name too
    assert settings_problems(RegistrySettings, {"registry": "r", "imagename": "api"}) == [
        SettingsProblem(("imagename",), "unknown field; expected one of: imageName, labels, mirrors, registry")
    ]


def test_problems_inside_lists_and_maps_name_the_nested_model() -> None:
    value = {"mirrors": [{"url": "a"}, {"url": "b", "readonly": True}], "labels": {"x": {"readOnly": "maybe"}}}
    problems = settings_problems(RegistrySettings, value)
    assert [(p.path, p.message) for p in problems] == [
        (("registry",), "required field is missing"),
        (("mirrors", 1, "readonly"), "unknown field; expected one of: readOnly, url"),
        (("labels", "x", "url"), "required field is missing"),
        (("labels", "x", "readOnly"), "input should be a valid boolean, unable to interpret input (got a string)"),
    ]
    assert problems[1].describe() == "settings.mirrors[1].readonly: unknown field; expected one of: readOnly, url"


def test_a_value_never_appears_in_a_problem() -> None:
    (problem,) = settings_problems(RegistrySettings, {"registry": ["s3cr3t-token"]})
    assert "s3cr3t" not in problem.message
    assert problem.message == "input should be a valid string (got a list)"


def test_an_implementation_without_settings_takes_none() -> None:
    class Nothing(SettingsModel):
        pass

    assert settings_problems(Nothing, {"x": 1}) == [
        SettingsProblem(("x",), "unknown field; this implementation takes no settings here")
    ]


def test_the_schema_is_kept_on_the_registration() -> None:
    registrar = PublisherRegistrar(Owner("acme"))
    registrar.add("acme-registry", "acme.publisher:Publisher", settings=RegistrySettings)
    assert registrar.collected[0].options == {"artifact_types": (), "settings": RegistrySettings}
    registrar.add("acme-plain", "acme.publisher:Plain")
    assert "settings" not in registrar.collected[1].options


@pytest.mark.parametrize("schema", [dict, {"registry": str}, "acme.settings:Settings", Mirror(url="x")])
def test_a_schema_that_is_no_pydantic_model_class_fails_the_plugin(schema: object) -> None:
    class Broken:
        @hookimpl
        def forge_register_artifact_types(self, register: ArtifactTypeRegistrar) -> None:
            register.add("acme-thing")

        @hookimpl
        def forge_register_publishers(self, register: PublisherRegistrar) -> None:
            register.add("acme-registry", "acme.publisher:Publisher", settings=schema)  # type: ignore[arg-type]

    host = PluginHost()
    info = PluginInfo("acme_broken", "acme-broken", "1.0")
    host.admit(Broken(), info)
    assert info.status == Status.FAILED
    assert info.error is not None
    assert info.error.startswith("publisher 'acme-registry': settings= must be a pydantic model class")
    assert (Family.ARTIFACT_TYPE, "acme-thing") not in host.registry  # all or nothing
    with pytest.raises(PluginLoadError) as raised:
        PublisherRegistrar(Owner("acme_broken")).add("x", "a:b", settings=schema)  # type: ignore[arg-type]
    assert raised.value.where == "acme_broken"


def test_first_party_implementations_declare_their_settings() -> None:
    host = load_plugins(PluginSettings())
    declared = {
        (r.family.value, r.name): r.options["settings"].__name__
        for r in host.registry.all()
        if "settings" in r.options and r.owner.plugin.startswith("forge_")
    }
    expected = {
        ("publisher", "docker"): "DockerTargetSettings",
        ("publisher", "pypi"): "PypiTargetSettings",
        ("publisher", "s3"): "S3TargetSettings",
        ("publisher", "github"): "GithubTargetSettings",
        ("producer", "earthly"): "EarthlyProducerSettings",
        ("producer", "python"): "PythonBuildSettings",
        ("producer", "exec"): "ExecProducerSettings",
        ("producer", "container"): "ContainerSettings",
        ("step_runner", "earthly"): "EarthlyStepSettings",
        ("step_runner", "exec"): "ExecStepSettings",
    }
    installed = {key: name for key, name in expected.items() if (Family.named(key[0]), key[1]) in host.registry}
    assert declared == installed
