"""Canonical resources layers: the release writer writes each resource as the CMP prints it, says
so in the metadata, and the CMP (either path) prints such a layer's files by what their text shows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from forge_core.adapters.oci import open_store
from forge_core.adapters.oci.layout import LayoutStore
from forge_core.adapters.oci.release_image import push_release_image, read_release_image
from forge_core.domain.canonical_layer import canonical_identity, plain_string, print_canonical
from forge_core.domain.oci import parse_reference
from forge_core.domain.release_image import ReleaseFacts, ReleaseImage, ReleaseTriggerInfo, resource_files
from forge_core.domain.resource_yaml import is_canonical, render_one
from forge_core.domain.resources import LayerFile, parse_resources, render_resources

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def manifests() -> list[dict[str, Any]]:
    return [
        {"kind": "Service", "apiVersion": "v1", "metadata": {"name": "web", "namespace": "prod"},
         "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}}},
        {"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "web", "labels": {"on": "yes"}},
         "spec": {"template": {"spec": {"containers": [{"name": "web", "args": ["--a", "1e3", "null"]}]}}}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "007", "namespace": "true"},
         "data": {"long": "word " * 2000, "multi": "a\nb\n", "unicode": "ünï", "version": "1.10"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "007", "namespace": "other"}, "data": {}},
    ]


def files_of(documents: list[dict[str, Any]]) -> list[tuple[str, bytes]]:
    return list(resource_files(documents).items())


def parsed_rendering(files: list[tuple[str, bytes]]) -> str:
    return render_resources(parse_resources(LayerFile(name=name, data=data) for name, data in files))


def test_a_canonical_layer_prints_what_parsing_and_writing_it_again_prints() -> None:
    files = files_of(manifests())
    assert all(is_canonical(data) for _, data in files)
    printed = print_canonical(files)
    assert printed is not None and printed == parsed_rendering(files)
    assert [(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(printed)] == [
        ("ConfigMap", "007"), ("ConfigMap", "007"), ("Deployment", "web"), ("Service", "web")]


def test_identity_is_read_from_the_text_as_yaml_reads_it() -> None:
    ((name, data),) = files_of([manifests()[2]])
    assert canonical_identity(name, data) == ("ConfigMap", "007", "true", name, 1)  # quoted: strings
    assert b'name: "007"\n' in data and b'namespace: "true"\n' in data


@pytest.mark.parametrize(
    "text",
    [
        b"apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n",  # no ---
        b"---\napiVersion: v1\nkind: Service\nmetadata:\n  name: x\n---\napiVersion: v1\nkind: Service\n"
        b"metadata:\n  name: y\n",  # two documents
        b"---\napiVersion: v1\nmetadata:\n  name: x\n",  # no kind
        b"---\napiVersion: v1\nkind: true\nmetadata:\n  name: x\n",  # kind reads as a boolean
        b"---\napiVersion: v1\nkind: Service\nmetadata: {name: x}\n",  # not as render_one writes it
        b"---\napiVersion: v1\nkind: Service\nmetadata:\n  labels:\n    name: x\n",  # no metadata.name
        b"---\napiVersion: v1\nkind: Service\nmetadata:\n  name: x\n  namespace: null\n",  # namespace not text
        b"---\napiVersion: v1\nkind: Service\nkind: Secret\nmetadata:\n  name: x\n",  # a key twice
        b"---\napiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec: *anchor\n",  # a `*`
        b"%YAML 1.1\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: x\n",  # a directive
        b"---\napiVersion: v1\nkind: Service\nmetadata:\n  name: x",  # no final line break
    ],
    ids=["no-start", "two-documents", "no-kind", "boolean-kind", "flow-metadata", "no-name", "null-namespace",
         "key-twice", "star", "directive", "no-newline"],
)
def test_text_that_does_not_show_one_resource_is_left_to_the_parser(text: bytes) -> None:
    assert canonical_identity("0001-x.yaml", text) is None
    assert print_canonical([("0001-x.yaml", text)]) is None


def test_duplicates_and_empty_layers_are_left_to_the_parser() -> None:
    ((name, data),) = files_of([manifests()[0]])
    assert print_canonical([(name, data), ("0002-copy.yaml", data)]) is None  # the parser names both files
    assert print_canonical([]) is None  # the parser refuses to print nothing


def read_back(reference: str) -> ReleaseImage:
    parsed = parse_reference(reference)
    return read_release_image(open_store(parsed), parsed)


def test_the_writer_says_canonical_only_of_files_written_as_the_cmp_prints_them(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path / "oci")
    facts = ReleaseFacts(repository="acme/mono", project="api", commit=COMMIT, release_number=1,
                         trigger=ReleaseTriggerInfo(type="manual"), created=datetime(2026, 12, 1, tzinfo=UTC))
    canonical = push_release_image(store, facts, resource_files(manifests()))
    image = read_back(canonical.reference)
    assert image.metadata.resources_canonical
    authored = {name: yaml.safe_dump(manifest, sort_keys=False, explicit_start=True).encode()
                for name, manifest in zip(resource_files(manifests()), manifests(), strict=True)}
    assert not any(is_canonical(data) for data in authored.values())  # the author's key order
    other = push_release_image(store, facts.model_copy(update={"project": "web"}), authored)
    assert not read_back(other.reference).metadata.resources_canonical


def test_render_one_is_the_file_the_writer_writes() -> None:
    document = manifests()[1]
    ((_, data),) = files_of([document])
    assert data == render_one(document).encode() and is_canonical(data)


@pytest.mark.parametrize(
    "written",
    ["Service", "apps/v1", "v1", "yes", "No", "TRUE", "off", "null", "NULL", "~", "", "0", "007", "0o17", "0x1F",
     "0b101", "1_000", "1e3", "1.5", ".5", ".inf", "-.inf", ".nan", "1:30", "190:20:30.15", "2026-12-01",
     "2026-12-01T13:00:00Z", "2026-1-1 1:00:00", "<<", "=", "1abc", "web-0", "a.b_c-d", "y", "n", "On", "oN",
     "0123456789abcdef0123456789abcdef01234567", "0b1010", "+12", "-3", "12-30", "3.0.1", "api-v1.2.0"],
)
def test_plain_string_reads_plain_scalars_as_yaml_does(written: str) -> None:
    try:
        loaded = yaml.safe_load(f"key: {written}\n")["key"]
    except yaml.YAMLError:  # `<<` and `=`: tags the safe loader has no constructor for
        loaded = None
    assert (plain_string(written) is not None) == isinstance(loaded, str)
    if isinstance(loaded, str):
        assert loaded == written
