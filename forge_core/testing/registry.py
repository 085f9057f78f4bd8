"""A real OCI registry for tests: Debian's ``docker-registry`` (distribution 2.8) on loopback.

Fixtures (session-scoped, registered by the kit's pytest plugin):

- ``oci_registry``: anonymous, delete enabled.
- ``oci_registry_basic``: htpasswd basic auth (user ``forge``; the password is in ``.password``).
- ``oci_registry_token``: bearer-token auth behind a small loopback token server (users as above).

Each yields a :class:`RegistryServer` (``.address`` is ``127.0.0.1:PORT``, ``.storage`` its
folder). :class:`RegistryServer` can also be used directly when a test must stop and start its
own registry. ``scripts/setup`` installs the Debian packages (``docker-registry``, and
``apache2-utils`` for ``htpasswd``); a missing binary is an error, never a skip.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import re
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

USER = "forge"
_SERVICE = "forge-test-registry"
_ISSUER = "forge-test-token-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed: run scripts/setup (it installs the Debian packages)")
    return found


class RegistryServer:
    """One ``docker-registry serve`` process with its own config and storage folder."""

    def __init__(
        self, folder: Path, *, auth: dict[str, Any] | None = None, password: str | None = None, access_log: bool = False
    ) -> None:
        self.folder = folder
        self.access_log = access_log  # every request in registry.log: server-side evidence of what was sent
        self.storage = folder / "storage"
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.password = password
        self._auth = auth
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> RegistryServer:
        self.storage.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": not self.access_log}},
            "storage": {"filesystem": {"rootdirectory": str(self.storage)}, "delete": {"enabled": True}},
            "http": {"addr": self.address, "secret": secrets.token_hex(16)},
        }
        if self._auth:
            config["auth"] = self._auth
        config_file = self.folder / "config.yml"
        config_file.write_text(json.dumps(config))  # JSON is YAML
        log = (self.folder / "registry.log").open("ab")
        self._process = subprocess.Popen(
            [_binary("docker-registry"), "serve", str(config_file)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self._wait_until_up()
        return self

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {(self.folder / 'registry.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"http://{self.address}/v2/", timeout=1).status_code in (200, 401):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"docker-registry did not answer on {self.address} within 15 s")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def requests(self) -> list[str]:
        """The request lines (``POST /v2/acme/api/blobs/uploads/``) of the access log, in order."""
        log = self.folder / "registry.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return [match.group(1) for match in _REQUEST_LINE.finditer(text)]

    def blob_file(self, digest: str) -> Path:
        """Where the registry keeps a blob's bytes (to corrupt it in a test)."""
        hex_part = digest.removeprefix("sha256:")
        return self.storage / "docker/registry/v2/blobs/sha256" / hex_part[:2] / hex_part / "data"


_REQUEST_LINE = re.compile(r'"((?:GET|HEAD|POST|PUT|PATCH|DELETE) \S+) HTTP/[\d.]+"')


def htpasswd_file(folder: Path, user: str, password: str) -> Path:
    """An htpasswd file with one bcrypt entry (distribution accepts bcrypt only)."""
    path = folder / "htpasswd"
    result = subprocess.run(
        [_binary("htpasswd"), "-niB", user], input=password.encode(), check=True, capture_output=True
    )
    path.write_bytes(result.stdout)
    return path


class TokenServer:
    """A loopback token server in the docker token-auth style: basic auth in, a signed JWT out.

    distribution verifies the token's ``x5c`` chain against ``rootcertbundle``, its issuer, its
    audience (the service) and the ``access`` claim; the server grants every scope it is asked for
    to a user whose password matches.
    """

    def __init__(self, folder: Path, user: str, password: str) -> None:
        self.port = free_port()
        self.realm = f"http://127.0.0.1:{self.port}/token"
        self._user, self._password = user, password
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _ISSUER)])
        now = datetime.datetime.now(datetime.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(self._key, hashes.SHA256())
        )
        self.certificate = folder / "token.crt"
        self.certificate.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self.requests: list[dict[str, list[str]]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def registry_auth(self) -> dict[str, Any]:
        return {
            "token": {
                "realm": self.realm,
                "service": _SERVICE,
                "issuer": _ISSUER,
                "rootcertbundle": str(self.certificate),
            }
        }

    def start(self) -> TokenServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _token(self, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            for part in scope.split():
                kind, _, rest = part.partition(":")
                name, _, actions = rest.rpartition(":")
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {
            "iss": _ISSUER,
            "sub": self._user,
            "aud": _SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        der = self._cert.public_bytes(serialization.Encoding.DER)
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"x5c": [base64.b64encode(der).decode()]})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self
        expected = "Basic " + base64.b64encode(f"{self._user}:{self._password}".encode()).decode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlparse(self.path).query)
                server.requests.append(query)
                if self.headers.get("Authorization") != expected:
                    self._reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
                    return
                self._reply(200, {"token": server._token(query.get("scope", [])), "expires_in": 300})

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: object) -> None:
                pass

        return Handler


def _password() -> str:
    return hashlib.sha256(secrets.token_bytes(16)).hexdigest()[:24]


@pytest.fixture(scope="session")
def oci_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """An anonymous registry on 127.0.0.1, delete enabled, for the whole session."""
    server = RegistryServer(tmp_path_factory.mktemp("oci-registry")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def oci_registry_basic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A registry asking for htpasswd basic auth: user :data:`USER`, password ``.password``."""
    folder = tmp_path_factory.mktemp("oci-registry-basic")
    password = _password()
    auth = {"htpasswd": {"realm": "forge-test", "path": str(htpasswd_file(folder, USER, password))}}
    server = RegistryServer(folder, auth=auth, password=password).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def oci_registry_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A registry asking for bearer tokens from a loopback token server (user :data:`USER`)."""
    folder = tmp_path_factory.mktemp("oci-registry-token")
    password = _password()
    tokens = TokenServer(folder, USER, password).start()
    server = RegistryServer(folder, auth=tokens.registry_auth(), password=password).start()
    yield server
    server.stop()
    tokens.stop()
