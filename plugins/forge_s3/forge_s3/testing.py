"""A real S3 server for tests: moto in server mode on loopback, with credentials enforced.

    from forge_s3.testing import moto_s3  # in a conftest.py: the session-scoped fixture

``moto_s3`` yields a :class:`MotoS3` (``.endpoint``; ``.credentials``, the valid key pair;
``.secrets``, the ``ctx.secrets`` of an ``s3`` target holding it; ``.bucket(name)``;
``.client()``). moto accepts any key unless its IAM checks are on: the server turns them on after
the three calls that create the IAM user whose access key every later request must be signed
with, so refused credentials are really refused.
Needs ``moto[server]`` (this plugin's ``test`` extra); a missing moto is an error, never a skip.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from botocore.config import Config

from forge_core.testing.registry import free_port

_UNAUTHENTICATED_SETUP_CALLS = 3  # create_user, put_user_policy, create_access_key
_ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


class MotoS3:
    """One moto server process; start it with :meth:`start`, stop it by its process id."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.credentials: dict[str, str] = {}
        self._process: subprocess.Popen[bytes] | None = None
        # a file, not a pipe: moto logs every request, and a full pipe would block the server
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())

    def start(self, timeout: float = 30.0) -> None:
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(_UNAUTHENTICATED_SETUP_CALLS)}
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self._process = subprocess.Popen(command, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"moto_server exited ({self._process.returncode}): {self._stderr()}")
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError(f"moto_server did not answer on {self.endpoint} within {timeout} s")
        iam = self._client("iam", {"access_key_id": "setup", "secret_access_key": "setup"})
        iam.create_user(UserName="forge")
        iam.put_user_policy(UserName="forge", PolicyName="all", PolicyDocument=json.dumps(_ALLOW_ALL))
        key = iam.create_access_key(UserName="forge")["AccessKey"]
        self.credentials = {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()

    @property
    def secrets(self) -> dict[str, str]:
        """An ``s3`` target's ``ctx.secrets``: its one credentials secret, the key pair as JSON."""
        return {"default": json.dumps(self.credentials)}

    @functools.cached_property
    def _s3(self) -> Any:
        return self._client("s3", self.credentials)

    def client(self) -> Any:
        """An S3 client signed with the server's valid credentials (one, shared: clients are thread-safe)."""
        return self._s3

    def bucket(self, name: str) -> str:
        """Create the bucket ``name`` (a fresh one per test keeps tests apart) and return its name."""
        self.client().create_bucket(Bucket=name)
        return name

    def _client(self, service: str, credentials: dict[str, str]) -> Any:
        return botocore.session.Session().create_client(
            service,
            region_name="us-east-1",
            endpoint_url=self.endpoint,
            aws_access_key_id=credentials["access_key_id"],
            aws_secret_access_key=credentials["secret_access_key"],
            config=Config(s3={"addressing_style": "path"}),
        )

    def _stderr(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-2000:]


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    """A moto S3 server on a free loopback port for the whole session (it takes ~4.5 s to start)."""
    server = MotoS3()
    server.start()
    try:
        yield server
    finally:
        server.stop()
