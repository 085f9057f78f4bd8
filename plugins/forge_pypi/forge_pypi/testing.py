"""A real pypiserver on a free loopback port (htpasswd auth for uploads), and example-like Python
projects to build, for any test that publishes to an index::

    from forge_pypi.testing import pypi_index  # in a conftest.py: the session-scoped fixture

Needs the plugin's ``test`` extra (pypiserver with passlib).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from passlib.apache import HtpasswdFile  # type: ignore[import-untyped]  # no stubs

from forge_core.testing.registry import free_port

USERNAME = "forge-uploader"
PASSWORD = "pypi-Pa55word-never-logged"


@dataclass(frozen=True)
class Index:
    url: str
    packages: Path
    username: str = USERNAME
    password: str = PASSWORD

    @property
    def simple(self) -> str:
        return f"{self.url}simple/"


@pytest.fixture(scope="session")
def pypi_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    root = tmp_path_factory.mktemp("pypiserver")
    packages = root / "packages"
    packages.mkdir()
    htpasswd = HtpasswdFile(str(root / "htpasswd"), new=True)
    htpasswd.set_password(USERNAME, PASSWORD)
    htpasswd.save()
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "pypi-server"), "run", "-i", "127.0.0.1", "-p", str(port),
         "-a", "update", "-P", str(root / "htpasswd"), "--hash-algo", "sha256", str(packages)],
        stdout=(root / "server.log").open("wb"), stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}simple/", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"pypiserver did not start: {(root / 'server.log').read_text()}") from None
                time.sleep(0.1)
        yield Index(url, packages)
    finally:
        server.terminate()
        server.wait(timeout=10)


ProjectWriter = Callable[..., Path]


def write_project(folder: Path, *, name: str, version: str, greeting: str = "Hello") -> Path:
    """A src-layout setuptools project like the example monorepo's greeting library."""
    package = folder / "src" / "greeting"
    package.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [build-system]
        requires = ["setuptools>=70.1"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{name}"
        version = "{version}"
        description = "Greetings, politely formatted"
        requires-python = ">=3.9"

        [tool.setuptools.packages.find]
        where = ["src"]
        """))
    (package / "__init__.py").write_text(f'def greet(who: str) -> str:\n    return "{greeting}, " + who + "!"\n')
    return folder
