"""Resolving a publisher target's credentials: the publisher gets its own values and nothing else.

The publisher is a real one, registered through the real plugin host: it uploads the artifact to
an HTTP server on loopback with its credential as a bearer token, and logs the server's reply
(which echoes the token back, as a careless server's error page would).
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import fields
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from forge_core.domain.errors import SecretError
from forge_core.domain.models import ProducedArtifact, PublishedLocation, PublishTarget, SecretRef
from forge_core.domain.secrets import ResolvedSecrets
from forge_core.plugin.family import Family
from forge_core.plugin.host import PluginHost, PluginInfo
from forge_core.plugin.markers import hookimpl
from forge_core.plugin.registry import PublisherRegistrar, SecretProviderRegistrar
from forge_core.ports.contexts import ExecutionContext
from forge_core.services.secrets import ProviderSecrets, execution_context
from forge_core.settings import Settings
from forge_core.settings.secrets import FileSecretsSettings, SecretsSettings
from forge_core.settings.worker import WorkerSettings
from forge_core.testing.http import JsonHandler

ENV_TOKEN = "env-token-4b1d9c"
FILE_KEY = "file-key-77a0e2"
UNRELATED_FILE_FIELD = "unrelated-field-93c1"
OTHER_ENV = "other-team-token-5e8f"
WORKER_SECRET = "worker-step-secret-0d2a"


class UploadServer(JsonHandler):
    received: list[tuple[str, str, bytes]]

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        auth = self.headers.get("Authorization", "")
        self.received.append((self.path, auth, body))
        self._reply(201, {"stored": self.path, "as": auth})


@pytest.fixture
def server() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    received: list[tuple[str, str, bytes]] = []
    handler = type("Handler", (UploadServer,), {"received": received})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", received
    httpd.shutdown()
    httpd.server_close()


SEEN: list[ExecutionContext] = []


class HttpUploadPublisher:
    """PUTs each file of the artifact to ``settings.url``/<project>/<file> with the target's
    ``default`` credential as a bearer token."""

    def publish(self, artifact: ProducedArtifact, target: PublishTarget, ctx: ExecutionContext) -> PublishedLocation:
        SEEN.append(ctx)
        token = ctx.secrets["default"]
        uri = ""
        for path in artifact.files:
            uri = f"{target.settings['url']}/{artifact.project}/{path.name}"
            request = urllib.request.Request(uri, data=path.read_bytes(), method="PUT")
            request.add_header("Authorization", f"Bearer {token}")
            with urllib.request.urlopen(request, timeout=10) as reply:
                ctx.log(f"{reply.status} {reply.read().decode()}")
        return PublishedLocation(publisher=target.name, type=target.type, uri=uri)


class UploadPlugin:
    @hookimpl
    def forge_register_publishers(self, register: PublisherRegistrar) -> None:
        register.add("http-upload", HttpUploadPublisher, description="PUT files to an HTTP server")


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The worker's environment and secrets folder: the two targets' credentials, and others."""
    monkeypatch.setenv("ACME_REGISTRY_TOKEN", ENV_TOKEN)
    monkeypatch.setenv("OTHER_TEAM_TOKEN", OTHER_ENV)
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "bucket.json").write_text(json.dumps({"access_key": FILE_KEY, "unrelated": UNRELATED_FILE_FIELD}))
    return Settings(
        worker=WorkerSettings(secrets={"DEPLOY_TOKEN": SecretStr(WORKER_SECRET)}),
        secrets=SecretsSettings(file=FileSecretsSettings(dir=folder)),
    )


def targets(url: str) -> tuple[PublishTarget, PublishTarget]:
    registry = PublishTarget(
        name="registry", type="http-upload", settings={"url": f"{url}/registry"},
        credentials={"default": SecretRef(provider="env", path="ACME_REGISTRY_TOKEN")},
    )
    bucket = PublishTarget(
        name="bucket", type="http-upload", settings={"url": f"{url}/bucket"},
        credentials={"default": SecretRef(provider="file", path="bucket.json", key="access_key")},
    )
    return registry, bucket


def everything_in(ctx: ExecutionContext) -> str:
    """Every value the context carries, as text (secrets, env, and the rest of its fields)."""
    return repr([getattr(ctx, f.name) for f in fields(ctx)]) + repr(dict(ctx.secrets)) + repr(dict(ctx.env))


def test_a_publisher_receives_its_own_targets_credentials_and_no_other_secret(
    forge_host: PluginHost, forge_register: Callable[..., PluginInfo], world: Settings,
    server: tuple[str, list[tuple[str, str, bytes]]], tmp_path: Path,
) -> None:
    forge_register(UploadPlugin(), "acme-upload")
    url, received = server
    payload = tmp_path / "api.tar.gz"
    payload.write_bytes(b"artifact bytes")
    artifact = ProducedArtifact(name="api", type="archive", project="api", commit="a" * 40, files=(payload,))
    secrets = ProviderSecrets(forge_host.registry, world.secrets)
    logs: dict[str, list[str]] = {}
    SEEN.clear()
    for target in targets(url):
        resolved = secrets.resolve_target(target)
        lines = logs.setdefault(target.name, [])
        ctx = execution_context(resolved, workdir=tmp_path, log=lines.append)
        publisher = forge_host.create(Family.PUBLISHER, target.type)
        location = publisher.publish(artifact, target, ctx)
        assert location.uri == f"{url}/{target.name}/api/api.tar.gz"

    registry_ctx, bucket_ctx = SEEN
    assert dict(registry_ctx.secrets) == {"default": ENV_TOKEN}
    assert dict(bucket_ctx.secrets) == {"default": FILE_KEY}
    assert received == [
        ("/registry/api/api.tar.gz", f"Bearer {ENV_TOKEN}", b"artifact bytes"),
        ("/bucket/api/api.tar.gz", f"Bearer {FILE_KEY}", b"artifact bytes"),
    ]
    for ctx, others in ((registry_ctx, (FILE_KEY,)), (bucket_ctx, (ENV_TOKEN,))):
        carried = everything_in(ctx)
        for value in (*others, UNRELATED_FILE_FIELD, OTHER_ENV, WORKER_SECRET):
            assert value not in carried
        assert "Settings" not in carried
    # the servers' echo of the token is masked before the log line is stored
    assert logs["registry"] == ['201 {"stored": "/registry/api/api.tar.gz", "as": "Bearer ****"}']
    assert logs["bucket"] == ['201 {"stored": "/bucket/api/api.tar.gz", "as": "Bearer ****"}']


def test_the_resolved_values_never_show_in_a_repr() -> None:
    values = ResolvedSecrets({"default": ENV_TOKEN})
    ctx = execution_context(values, workdir=Path("."), log=lambda _line: None)
    assert ENV_TOKEN not in repr(values) and ENV_TOKEN not in repr(ctx)
    assert repr(values) == "ResolvedSecrets(names=['default'])"
    assert values.mask(f"token={ENV_TOKEN}") == "token=****"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (SecretRef(provider="env", path="ACME_MISSING_TOKEN"),
         "publisher target 'registry': credential 'default': env secret 'ACME_MISSING_TOKEN': "
         "the worker has no such environment variable"),
        (SecretRef(provider="file", path="absent.json", key="access_key"),
         "publisher target 'registry': credential 'default': file secret 'absent.json', key 'access_key': "
         "no such file in the secrets folder"),
        (SecretRef(provider="file", path="bucket.json", key="secret_key"),
         "publisher target 'registry': credential 'default': file secret 'bucket.json', key 'secret_key': "
         "no such key (keys: access_key, unrelated)"),
        (SecretRef(provider="vault", path="kv/registry"),
         "publisher target 'registry': credential 'default' (provider 'vault', secret 'kv/registry'): "
         "unknown secret provider 'vault'; installed: env, file"),
    ],
)
def test_a_failing_provider_names_the_target_the_provider_and_the_secret(
    forge_host: PluginHost, world: Settings, ref: SecretRef, message: str
) -> None:
    target = PublishTarget(name="registry", type="http-upload", credentials={"default": ref})
    with pytest.raises(SecretError) as raised:
        ProviderSecrets(forge_host.registry, world.secrets).resolve_target(target)
    assert str(raised.value) == message
    assert raised.value.where == "publisher target 'registry'"
    for value in (ENV_TOKEN, FILE_KEY, UNRELATED_FILE_FIELD):
        assert value not in str(raised.value)


class RecordingProvider:
    """A plugin's provider: records the settings it was created with."""

    created: list[dict[str, Any]] = []

    def __init__(self, options: dict[str, Any]) -> None:
        RecordingProvider.created.append(dict(options))

    def resolve(self, ref: SecretRef) -> str:
        if ref.path == "explode":
            raise RuntimeError("backend unreachable at 127.0.0.1:8200")
        return f"vault:{ref.path}"


class VaultPlugin:
    @hookimpl
    def forge_register_secret_providers(self, register: SecretProviderRegistrar) -> None:
        register.add("vault", RecordingProvider, description="test provider")


def test_a_plugins_provider_is_created_once_with_only_its_own_settings(
    forge_host: PluginHost, forge_register: Callable[..., PluginInfo], tmp_path: Path
) -> None:
    forge_register(VaultPlugin(), "acme-vault")
    RecordingProvider.created.clear()
    settings = SecretsSettings.model_validate(
        {"file": {"dir": str(tmp_path)}, "vault": {"address": "http://127.0.0.1:8200"}, "other": {"token": "x"}}
    )
    secrets = ProviderSecrets(forge_host.registry, settings)
    first = secrets.resolve({"a": SecretRef(provider="vault", path="kv/a")}, owner="step 'push'")
    second = secrets.resolve({"b": SecretRef(provider="vault", path="kv/b")}, owner="step 'push'")
    assert (dict(first.values), dict(second.values)) == ({"a": "vault:kv/a"}, {"b": "vault:kv/b"})
    assert RecordingProvider.created == [{"address": "http://127.0.0.1:8200"}]
    with pytest.raises(SecretError) as raised:
        secrets.resolve({"c": SecretRef(provider="vault", path="explode")}, owner="step 'push'")
    assert str(raised.value) == (
        "step 'push': credential 'c' (provider 'vault', secret 'explode'): provider of plugin acme-vault "
        "raised RuntimeError: backend unreachable at 127.0.0.1:8200"
    )


class FactoryPlugin:
    """A factory that is not a class is checked when the worker first creates its provider."""

    @hookimpl
    def forge_register_secret_providers(self, register: SecretProviderRegistrar) -> None:
        register.add("broken", lambda options: object())


def test_a_provider_that_is_not_one_fails_resolution_naming_its_plugin(
    forge_host: PluginHost, forge_register: Callable[..., PluginInfo]
) -> None:
    forge_register(FactoryPlugin(), "acme-broken")
    with pytest.raises(SecretError) as raised:
        ProviderSecrets(forge_host.registry).resolve(
            {"token": SecretRef(provider="broken", path="x")}, owner="publisher target 'registry'"
        )
    assert str(raised.value) == (
        "publisher target 'registry': credential 'token' (provider 'broken', secret 'x'): acme-broken: "
        "secret provider 'broken' does not implement SecretProvider (missing method 'resolve')"
    )
