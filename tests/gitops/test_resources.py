"""The documents of a resources layer: parsed, checked, sorted by (kind, name) as the CMP prints them."""

from __future__ import annotations

import io
import tarfile

import pytest
import yaml

from forge_core.adapters.archive import read_yaml_layer
from forge_core.domain.resources import LayerFile, ResourceError, parse_resources, render_resources

SERVICE = "apiVersion: v1\nkind: Service\nmetadata:\n  name: api\nspec:\n  ports: [{port: 80}]\n"
DEPLOYMENTS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: worker}
---
# an empty document between two is skipped
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
"""


def files(**texts: str) -> list[LayerFile]:
    return [LayerFile(name=name.replace("__", "/").replace("_", "."), data=text.encode()) for name, text in
            texts.items()]


def test_documents_are_sorted_by_kind_then_name_across_files() -> None:
    resources = parse_resources(files(a_yaml=SERVICE, deploy__all_yml=DEPLOYMENTS))
    assert [(r.kind, r.name) for r in resources] == [("Deployment", "api"), ("Deployment", "worker"),
                                                      ("Service", "api")]
    assert [(r.file, r.document) for r in resources] == [("deploy/all.yml", 3), ("deploy/all.yml", 1), ("a.yaml", 1)]
    assert resources[0].namespace == "shop"


def test_rendering_is_one_stream_in_that_order_and_byte_stable() -> None:
    first = render_resources(parse_resources(files(a_yaml=SERVICE, b_yaml=DEPLOYMENTS)))
    again = render_resources(parse_resources(files(z_yaml=DEPLOYMENTS, a_yaml=SERVICE)))
    assert first == again
    documents = list(yaml.safe_load_all(first))
    assert [d["metadata"]["name"] for d in documents] == ["api", "worker", "api"]
    assert first.startswith("---\napiVersion: apps/v1\n")


def test_same_name_in_two_namespaces_is_two_objects_in_a_fixed_order() -> None:
    one = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: b}\n"
    two = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: a}\n"
    resources = parse_resources(files(x_yaml=one, y_yaml=two))
    assert [r.namespace for r in resources] == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("kind: Service\nmetadata: {name: a}\n", "r.yaml#1: apiVersion", "apiVersion is missing"),
        ("apiVersion: v1\nmetadata: {name: a}\n", "r.yaml#1: kind", "kind is missing"),
        ("apiVersion: v1\nkind: Service\n", "r.yaml#1: metadata.name", "metadata.name is missing"),
        ("apiVersion: v1\nkind: Service\nmetadata: {name: 3}\n", "r.yaml#1: metadata.name", "not a string"),
        (SERVICE + "---\n- a list\n", "r.yaml#2", "a resource is a mapping, got list"),
        ("apiVersion: v1\nkind: [\n", "r.yaml:3", "not valid YAML"),
        ("apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: [x]}\n", "r.yaml#1: metadata.namespace",
         "not a string"),
    ],
)
def test_bad_documents_are_refused_naming_file_document_and_field(text: str, where: str, message: str) -> None:
    with pytest.raises(ResourceError) as error:
        parse_resources(files(r_yaml=text))
    assert error.value.where == where
    assert message in error.value.message


def test_an_object_defined_twice_is_refused_naming_both_places() -> None:
    with pytest.raises(ResourceError, match=r"Service 'api' is defined twice \(also in a\.yaml#1\)") as error:
        parse_resources(files(a_yaml=SERVICE, b_yaml=SERVICE))
    assert error.value.where == "b.yaml#1"


def test_yaml_aliases_are_refused() -> None:
    laughs = "a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n"
    with pytest.raises(ResourceError, match="aliases are not accepted") as error:
        parse_resources(files(bomb_yaml=laughs))
    assert error.value.where == "bomb.yaml:2"


def test_text_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(ResourceError, match="not UTF-8") as error:
        parse_resources([LayerFile(name="bin.yaml", data=b"\xff\xfe")])
    assert error.value.where == "bin.yaml"


def test_a_layer_read_safely_then_parsed() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in (("svc.yaml", SERVICE), ("deploy.yml", DEPLOYMENTS)):
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text.encode()))
    buffer.seek(0)
    resources = parse_resources(read_yaml_layer(buffer))
    assert [(r.kind, r.name, r.file) for r in resources] == [
        ("Deployment", "api", "deploy.yml"), ("Deployment", "worker", "deploy.yml"), ("Service", "api", "svc.yaml")]
