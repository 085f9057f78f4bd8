"""The Earthly command line, built without running anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from forge_core.sdk import ConfigurationError
from forge_earthly.command import Invocation, environment, resolve_target


def test_target_form_and_artifact_form(tmp_path: Path) -> None:
    invocation = Invocation(binary="/bin/earthly", target="./sub+build", cwd=tmp_path, args={"A": "1", "B": "x y"},
                            secrets=("TOKEN",), config="", allow_privileged=True, ci=True)
    assert invocation.argv("linux/arm64") == [
        "/bin/earthly", "--platform", "linux/arm64", "--config", "", "--allow-privileged", "--ci",
        "--secret", "TOKEN", "./sub+build", "--A=1", "--B=x y"]
    assert invocation.argv(None, tmp_path / "out")[-5:] == [
        "--artifact", "(./sub+build/*", "--A=1", "--B=x y)", f"{tmp_path}/out/"]
    bare = Invocation(binary="earthly", target="+t", cwd=tmp_path)
    assert bare.argv(None, tmp_path) == ["earthly", "--artifact", "+t/*", f"{tmp_path}/"]


def test_remote_targets_pass_as_written_local_ones_are_checked(tmp_path: Path) -> None:
    (tmp_path / "svc" / "api").mkdir(parents=True)
    (tmp_path / "svc" / "api" / "Earthfile").write_text("VERSION 0.8\n")
    remote = "github.com/acme/tools:v1.2+lint"
    assert resolve_target(remote, tmp_path, "svc", where="w") == (remote, tmp_path / "svc")
    assert resolve_target("./api+t", tmp_path, "svc", where="w")[0] == "./api+t"
    with pytest.raises(ConfigurationError, match="no Earthfile in svc/"):
        resolve_target("+t", tmp_path, "svc", where="w")
    with pytest.raises(ConfigurationError, match="leaves the checkout"):
        resolve_target("../../x+t", tmp_path, "svc", where="w")
    with pytest.raises(ConfigurationError, match="a local reference starts with"):
        resolve_target("/etc+t", tmp_path, "svc", where="w")


def test_environment_keeps_earthlys_variables_and_drops_the_workers_credentials() -> None:
    worker = {"PATH": "/bin", "EARTHLY_CONFIG": "c.yml", "EARTHLY_SECRETS": "x=1", "FORGE_API__TOKEN": "t",
              "AWS_SECRET_ACCESS_KEY": "k"}
    env = environment({"CI": "true"}, {"TOKEN": "a,b"}, worker)
    assert env == {"PATH": "/bin", "EARTHLY_CONFIG": "c.yml", "CI": "true", "TOKEN": "a,b"}
