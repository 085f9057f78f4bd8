"""The publisher and producer against a real pypiserver: the round trip through pip, re-publishing,
a changed file for a published version, refused credentials, an index that is down."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import threading
import venv
from pathlib import Path
from typing import Any

import pytest

from forge_core.sdk import (
    ArtifactSpec,
    ConfigurationError,
    ExecutionContext,
    ForgeError,
    ProducedArtifact,
    ProjectRef,
    PublishedLocation,
    PublishTarget,
    WorkWithdrawn,
)
from forge_pypi.index import CredentialsRefused, IndexUnavailable
from forge_pypi.producer import PythonProducer
from forge_pypi.publisher import PypiPublisher, VersionExists, credentials

COMMIT = "c0ffee" + "0" * 34


def produce(workdir: Path, project: str, settings: dict[str, Any] | None = None,
            ctx: ExecutionContext | None = None) -> ProducedArtifact:
    spec = ArtifactSpec(name="greeting", type="python", producer="python",
                        producer_settings={"isolation": False, **(settings or {})})
    return PythonProducer().produce(spec, ProjectRef(name="greeting", path=project), COMMIT,
                                    ctx or ExecutionContext(workdir=workdir))


def target(url: str, **settings: Any) -> PublishTarget:
    return PublishTarget(name="package-index", type="pypi", settings={"repository": url, **settings})


def context(workdir: Path, lines: list[str], **secrets: str) -> ExecutionContext:
    return ExecutionContext(workdir=workdir, secrets=secrets, log=lines.append)


def on_index(index: Any, prefix: str) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(index.packages.iterdir()) if p.name.startswith(prefix)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_produce_publish_install_back_and_publish_again(pypi_index: Any, python_project: Any, tmp_path: Path) -> None:
    python_project(tmp_path / "libs" / "greeting", name="acme-greeting", version="0.1.0")
    artifact = produce(tmp_path, "libs/greeting")
    wheel, sdist = artifact.files
    assert (wheel.name, sdist.name) == ("acme_greeting-0.1.0-py3-none-any.whl", "acme_greeting-0.1.0.tar.gz")
    assert artifact.digest == "sha256:" + hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert artifact.metadata["version"] == "0.1.0" and artifact.metadata["distribution"] == "acme-greeting"
    assert (artifact.name, artifact.project, artifact.commit) == ("greeting", "greeting", COMMIT)

    lines: list[str] = []
    ctx = context(tmp_path, lines, username=pypi_index.username, password=pypi_index.password)
    location = PypiPublisher().publish(artifact, target(pypi_index.url), ctx)
    expected = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in artifact.files}
    assert on_index(pypi_index, "acme_greeting-") == expected
    assert location == PublishedLocation(
        publisher="package-index", type="pypi", uri=f"{pypi_index.simple}acme-greeting/", digest=artifact.digest,
        metadata={"version": "0.1.0", "files": [{"filename": n, "sha256": h} for n, h in expected.items()]})
    assert PypiPublisher().plan(artifact, target(pypi_index.url)) == location
    assert not any(pypi_index.password in line for line in lines)

    # pip installs it back from the index alone (no machine pip config, no other index)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    hermetic = {"PATH": os.environ["PATH"], "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run([python, "-m", "pip", "install", "--no-cache-dir", "--index-url", pypi_index.simple,
                    "acme-greeting==0.1.0"], env=hermetic, check=True, capture_output=True)
    greeted = subprocess.run([python, "-c", "import greeting; print(greeting.greet('forge'))"],
                             env=hermetic, check=True, capture_output=True, text=True)
    assert greeted.stdout == "Hello, forge!\n"

    # a rebuild of the same source is byte-identical, and publishing it again is a no-op
    before = {p.name: p.stat().st_mtime_ns for p in pypi_index.packages.iterdir()}
    again: list[str] = []
    rebuilt = produce(tmp_path, "libs/greeting")
    assert rebuilt.digest == artifact.digest and rebuilt.metadata == artifact.metadata
    ctx = context(tmp_path, again, username=pypi_index.username, password=pypi_index.password)
    assert PypiPublisher().publish(rebuilt, target(pypi_index.url), ctx) == location
    assert {p.name: p.stat().st_mtime_ns for p in pypi_index.packages.iterdir()} == before
    assert not any("uploading" in line for line in again)
    assert "acme-greeting 0.1.0: 0 file(s) uploaded, 2 already there" in again


def test_a_changed_file_for_a_published_version_is_refused(pypi_index: Any, python_project: Any,
                                                            tmp_path: Path) -> None:
    secrets = {"username": pypi_index.username, "password": pypi_index.password}
    python_project(tmp_path / "lib", name="acme-changed", version="3.0.0")
    PypiPublisher().publish(produce(tmp_path, "lib"), target(pypi_index.url), context(tmp_path, [], **secrets))
    published = on_index(pypi_index, "acme_changed-")

    python_project(tmp_path / "lib", name="acme-changed", version="3.0.0", greeting="Howdy")
    changed = produce(tmp_path, "lib")
    with pytest.raises(VersionExists) as refused:
        PypiPublisher().publish(changed, target(pypi_index.url), context(tmp_path, [], **secrets))
    assert "version 3.0.0 already exists on the index with a different acme_changed-3.0.0" in str(refused.value)
    assert refused.value.where == "publisher package-index"
    assert on_index(pypi_index, "acme_changed-") == published


def test_a_version_published_from_other_files_is_refused(pypi_index: Any, python_project: Any,
                                                          tmp_path: Path) -> None:
    # an sdist of the same version under the other file-name spelling is somebody else's upload
    python_project(tmp_path / "lib", name="acme-other", version="1.0")
    artifact = produce(tmp_path, "lib")
    (pypi_index.packages / "acme-other-1.0.tar.gz").write_bytes(artifact.files[1].read_bytes() + b"\0")
    secrets = {"username": pypi_index.username, "password": pypi_index.password}
    with pytest.raises(VersionExists, match=r"version 1.0 already exists on the index with other files"):
        PypiPublisher().publish(artifact, target(pypi_index.url), context(tmp_path, [], **secrets))
    assert on_index(pypi_index, "acme_other") == {}


def test_refused_credentials_are_a_clear_error_that_never_shows_the_password(
    pypi_index: Any, python_project: Any, tmp_path: Path
) -> None:
    python_project(tmp_path / "lib", name="acme-refused", version="1.0.0")
    artifact = produce(tmp_path, "lib")
    lines: list[str] = []
    wrong = "wrong-Pa55word-for-the-index"
    with pytest.raises(CredentialsRefused) as refused:
        PypiPublisher().publish(artifact, target(pypi_index.url),
                                context(tmp_path, lines, username=pypi_index.username, password=wrong))
    message = str(refused.value)
    assert f"the index at {pypi_index.url} refused the credentials (403)" in message
    assert "acme_refused-1.0.0" in message and refused.value.where == "publisher package-index"
    assert lines, "twine's output reaches the log"
    assert wrong not in message and not any(wrong in line for line in lines)
    assert on_index(pypi_index, "acme_refused-") == {}


def test_a_target_without_credentials_says_which_it_needs(python_project: Any, tmp_path: Path) -> None:
    python_project(tmp_path / "lib", name="acme-anon", version="1.0.0")
    artifact = produce(tmp_path, "lib")
    for given, named in (({"user": "x"}, "it has: user"), ({"default": "half:"}, "is not `user:password`")):
        with pytest.raises(ConfigurationError, match=r"needs credentials: one reference holding") as refused:
            PypiPublisher().publish(artifact, target("http://127.0.0.1:1/"), context(tmp_path, [], **given))
        assert named in str(refused.value) and "half" not in str(refused.value)


def test_credentials_come_as_one_reference_or_by_name() -> None:
    where = "publisher t"
    assert credentials({"default": "forge:pa:ss"}, where=where) == ("forge", "pa:ss")
    assert credentials({"default": "pypi-AgEIcHlwaS5vcmc"}, where=where) == ("__token__", "pypi-AgEIcHlwaS5vcmc")
    assert credentials({"username": "u", "password": "p"}, where=where) == ("u", "p")
    assert credentials({"token": "t"}, where=where) == ("__token__", "t")


def test_the_single_reference_form_uploads(pypi_index: Any, python_project: Any, tmp_path: Path) -> None:
    python_project(tmp_path / "lib", name="acme-single", version="1.0.0")
    single = f"{pypi_index.username}:{pypi_index.password}"
    PypiPublisher().publish(produce(tmp_path, "lib"), target(pypi_index.url), context(tmp_path, [], default=single))
    assert sorted(on_index(pypi_index, "acme_single-")) == [
        "acme_single-1.0.0-py3-none-any.whl", "acme_single-1.0.0.tar.gz"]


def test_an_index_that_is_down_is_retried_then_named(python_project: Any, tmp_path: Path) -> None:
    python_project(tmp_path / "lib", name="acme-down", version="1.0.0")
    artifact = produce(tmp_path, "lib")
    down = f"http://127.0.0.1:{free_port()}/"
    lines: list[str] = []
    with pytest.raises(IndexUnavailable) as unavailable:
        PypiPublisher().publish(artifact, target(down, attempts=3), context(tmp_path, lines, token="pypi-t0ken"))
    assert f"the index at {down}simple/acme-down/ is unavailable after 3 attempts" in str(unavailable.value)
    assert [line.split(";")[1].strip() for line in lines if "retrying" in line] == [
        "attempt 1 of 3 failed, retrying in 0.5s", "attempt 2 of 3 failed, retrying in 1s"]
    # planning needs no index at all
    assert PypiPublisher().plan(artifact, target(down)).uri == f"{down}simple/acme-down/"


def test_a_withdrawn_publish_stops_while_waiting_to_retry(python_project: Any, tmp_path: Path) -> None:
    python_project(tmp_path / "lib", name="acme-withdrawn", version="1.0.0")
    artifact = produce(tmp_path, "lib")
    ctx = ExecutionContext(workdir=tmp_path, secrets={"token": "t"}, log=lambda line: None)
    threading.Timer(0.2, ctx.stop.set).start()
    with pytest.raises(WorkWithdrawn):
        PypiPublisher().publish(artifact, target(f"http://127.0.0.1:{free_port()}/", attempts=10), ctx)


def test_a_withdrawn_build_is_killed(python_project: Any, tmp_path: Path) -> None:
    project = python_project(tmp_path / "lib", name="acme-slow", version="1.0.0")
    # a setup.py that hangs: the build backend runs it
    (project / "setup.py").write_text("import time\ntime.sleep(60)\nfrom setuptools import setup\nsetup()\n")
    ctx = ExecutionContext(workdir=tmp_path)
    threading.Timer(1.0, ctx.stop.set).start()
    with pytest.raises(WorkWithdrawn):
        produce(tmp_path, "lib", ctx=ctx)


def test_a_failing_build_reports_the_builders_output(python_project: Any, tmp_path: Path) -> None:
    project = python_project(tmp_path / "lib", name="acme-broken", version="1.0.0")
    (project / "setup.py").write_text("raise SystemExit('the setup script refuses: broken-on-purpose')\n")
    with pytest.raises(ForgeError) as failed:
        produce(tmp_path, "lib")
    assert "building" in str(failed.value) and "broken-on-purpose" in str(failed.value)
    assert failed.value.where == "producer python of artifact greeting (project greeting)"


def test_bad_producer_settings_and_folders_are_named(python_project: Any, tmp_path: Path) -> None:
    python_project(tmp_path / "lib", name="acme-bad", version="1.0.0")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigurationError, match=r"has no pyproject.toml or setup.py"):
        produce(tmp_path, "empty")
    with pytest.raises(ConfigurationError, match=r"outDir \.\./\.\./elsewhere leaves"):
        produce(tmp_path, "lib", {"outDir": "../../elsewhere"})
    with pytest.raises(ConfigurationError, match=r"invalid python producer settings"):
        produce(tmp_path, "lib", {"isolated": False})


def test_an_upload_the_index_fails_transiently_is_retried(pypi_index: Any, flaky_index: Any, python_project: Any,
                                                          tmp_path: Path) -> None:
    python_project(tmp_path / "lib", name="acme-flaky", version="1.0.0")
    artifact = produce(tmp_path, "lib")
    flaky_index.failures = 7  # twine itself posts up to 5 times per run: its first run fails, the second lands
    lines: list[str] = []
    ctx = context(tmp_path, lines, username=pypi_index.username, password=pypi_index.password)
    location = PypiPublisher().publish(artifact, target(flaky_index.url, attempts=3), ctx)
    assert flaky_index.refused == 7
    assert on_index(pypi_index, "acme_flaky-") == {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                                                   for p in artifact.files}
    assert location.uri == f"{flaky_index.url}simple/acme-flaky/"
    retried = [line for line in lines if line.startswith("upload of ") and "retrying" in line]
    assert len(retried) == 1 and "HTTPError: 503" in retried[0], lines


def test_an_upload_that_keeps_failing_names_the_index(pypi_index: Any, flaky_index: Any, python_project: Any,
                                                      tmp_path: Path) -> None:
    python_project(tmp_path / "lib", name="acme-flaky-down", version="1.0.0")
    artifact = produce(tmp_path, "lib")
    flaky_index.failures = 100
    ctx = context(tmp_path, [], username=pypi_index.username, password=pypi_index.password)
    with pytest.raises(IndexUnavailable) as unavailable:
        PypiPublisher().publish(artifact, target(flaky_index.url, attempts=2), ctx)
    assert "uploading acme_flaky_down-1.0.0" in str(unavailable.value)
    assert f"to {flaky_index.url} failed after 2 attempts" in str(unavailable.value)
    assert flaky_index.refused == 2 * 5 and on_index(pypi_index, "acme_flaky_down-") == {}
