"""The exec producer: a real shell command writes files, a folder or an OCI image layout."""

from __future__ import annotations

import gzip
import hashlib
import shlex
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from forge_core.sdk import (
    ArtifactSpec,
    ConfigurationError,
    ExecutionContext,
    Family,
    ForgeError,
    ProducedArtifact,
    ProjectRef,
    WorkWithdrawn,
    parse_reference,
)
from forge_core.testing import PluginHost
from forge_core.testing.contracts import ProducerContract

COMMIT = "c0ffee" + "0" * 34
PYTHON = shlex.quote(sys.executable)

# Writes an OCI image layout of one image per tag given (an empty tag: untagged), stdlib only, as
# a build tool would; "--drop-layer" leaves out the layer blob the manifest names.
MAKE_LAYOUT = '''
import hashlib, json, sys
from pathlib import Path

out, tags = Path(sys.argv[1]), [t for t in sys.argv[2:] if not t.startswith("--")]
blobs = out / "blobs" / "sha256"
blobs.mkdir(parents=True, exist_ok=True)

def put(data, keep=True):
    digest = hashlib.sha256(data).hexdigest()
    if keep:
        (blobs / digest).write_bytes(data)
    return {"digest": "sha256:" + digest, "size": len(data)}

(out / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
entries = []
for n, tag in enumerate(tags):
    layer = put(("layer %d" % n).encode(), keep="--drop-layer" not in sys.argv)
    config = put(json.dumps({"architecture": "amd64", "os": "linux", "n": n}).encode())
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}],
    }).encode()
    entry = {"mediaType": "application/vnd.oci.image.manifest.v1+json", **put(manifest)}
    if tag != "-":
        entry["annotations"] = {"org.opencontainers.image.ref.name": tag}
    entries.append(entry)
(out / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": entries}))
'''


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


class Project:
    """A checkout with one project folder, and the exec producer to run in it."""

    def __init__(self, host: PluginHost, root: Path) -> None:
        self.root, self.folder = root, root / "tool"
        self.folder.mkdir(parents=True)
        self.producer = host.create(Family.PRODUCER, "exec")
        self.lines: list[str] = []

    def produce(self, kind: str = "binary", **settings: Any) -> ProducedArtifact:
        return self.produce_with(ExecutionContext(workdir=self.root, log=self.lines.append), kind, **settings)

    def produce_with(self, ctx: ExecutionContext, kind: str = "binary", **settings: Any) -> ProducedArtifact:
        spec = ArtifactSpec(name="thing", type=kind, producer="exec", producer_settings=settings)
        result = self.producer.produce(spec, ProjectRef(name="tool", path="tool"), COMMIT, ctx)
        assert isinstance(result, ProducedArtifact)
        return result


@pytest.fixture
def project(forge_installed_host: PluginHost, tmp_path: Path) -> Project:
    return Project(forge_installed_host, tmp_path / "checkout")


class TestExecProducer(ProducerContract):
    plugin_id = "forge_exec"
    distribution = "catalyst-forge-exec"
    names = ("exec",)

    def producer_settings(self, name: str, tmp_path: Path) -> dict[str, Any]:
        (tmp_path / "demo").mkdir()
        return {"command": "mkdir -p out && printf 'built %s' \"$FORGE_COMMIT\" > out/demo", "files": ["out/demo"]}

    def verify(self, name: str, result: ProducedArtifact, case: Any) -> None:
        _, _, commit, ctx = case
        built = ctx.workdir / "demo" / "out" / "demo"
        assert result.files == (built,)
        assert built.read_text() == f"built {commit}"
        assert result.digest == sha256(built)


# --- files ------------------------------------------------------------------------------------------


def test_files_are_collected_in_glob_order_with_the_first_ones_digest(project: Project) -> None:
    command = "mkdir -p dist && echo b > dist/b.bin && echo a > dist/a.bin && echo notes > NOTES"
    result = project.produce(command=command, files=["dist/*.bin", "NOTES"])
    folder = project.folder
    assert result.files == (folder / "dist/a.bin", folder / "dist/b.bin", folder / "NOTES")
    assert result.digest == sha256(folder / "dist/a.bin")
    assert result.metadata["files"] == [
        {"path": p, "size": (folder / p).stat().st_size, "sha256": sha256(folder / p).removeprefix("sha256:")}
        for p in ("dist/a.bin", "dist/b.bin", "NOTES")
    ]
    assert (result.name, result.type, result.project, result.commit) == ("thing", "binary", "tool", COMMIT)


def test_the_command_runs_in_the_project_folder_with_its_environment(project: Project) -> None:
    command = 'printf "%s|%s|%s|%s" "$PWD" "$SOURCE_DATE_EPOCH" "$FLAVOUR" "$FORGE_ARTIFACT" > env.txt'
    project.produce(command=command, files=["env.txt"], env={"FLAVOUR": "slim"})
    pwd, epoch, flavour, artifact = (project.folder / "env.txt").read_text().split("|")
    assert Path(pwd).resolve() == project.folder.resolve()
    assert (epoch, flavour, artifact) == ("315532800", "slim", "thing")
    ctx = ExecutionContext(workdir=project.root, env={"SOURCE_DATE_EPOCH": "1700000000"})
    project.produce_with(ctx, command=command, files=["env.txt"])
    assert (project.folder / "env.txt").read_text().split("|")[1] == "1700000000"


def test_a_declared_output_that_was_not_written_is_named(project: Project) -> None:
    with pytest.raises(ForgeError, match=r"declared output 'dist/\*\.whl' matches no file") as raised:
        project.produce("python", command="mkdir -p dist && touch dist/x.tar.gz", files=["dist/*.tar.gz", "dist/*.whl"])
    assert "artifact thing (project tool)" in str(raised.value)


def test_a_stale_output_from_an_earlier_run_is_not_collected(project: Project) -> None:
    (project.folder / "dist").mkdir()
    (project.folder / "dist" / "tool").write_text("old build")
    with pytest.raises(ForgeError, match="'dist/tool' matches no file"):
        project.produce(command="true", files=["dist/tool"])


def test_outputs_may_not_leave_the_project(project: Project, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"files\.0: .*'\.\./x' must be relative to the project's folder"):
        project.produce(command="true", files=["../x"])
    with pytest.raises(ConfigurationError, match=r"folder: .*'/elsewhere' must be relative"):
        project.produce(command="true", folder="/elsewhere")
    (tmp_path / "outside").write_text("not the project's")
    with pytest.raises(ConfigurationError, match="leaves"):  # a link the command made, pointing out
        project.produce(command=f"ln -sf {shlex.quote(str(tmp_path / 'outside'))} link", files=["link"])
    with pytest.raises(ConfigurationError, match=r"folder bin .*leaves"):
        project.produce(command=f"mkdir bin && ln -s {shlex.quote(str(tmp_path / 'outside'))} bin/x", folder="bin")


def test_a_failed_run_leaves_no_output_behind(project: Project) -> None:
    with pytest.raises(ForgeError, match="code 1"):
        project.produce("archive", command="mkdir -p site && echo half > site/a && exit 1", folder="site")
    assert not (project.folder / "site").exists()


@pytest.mark.parametrize(
    ("kind", "settings", "message"),
    [
        ("binary", {"command": "true"}, "declare exactly one output: files, folder or layout (given: none)"),
        ("binary", {"command": "true", "files": ["a"], "folder": "b"}, "given: files, folder"),
        ("binary", {"command": "true", "layout": "img"}, "a binary artifact declares files or a folder"),
        ("container", {"command": "true", "files": ["a"]}, "a container artifact declares a layout output"),
        ("binary", {"command": "true", "files": ["a"], "tag": "v1"}, "tag is for a layout output"),
        ("binary", {"command": "true", "files": ["a"], "timeout": "soon"}, "timeout"),
        ("binary", {"command": "true", "files": ["a"], "env": {"NOT-A-NAME": "x"}}, "NOT-A-NAME"),
        ("binary", {"files": ["a"]}, "command"),
        ("binary", {"command": "true", "files": [""]}, "files.0"),
    ],
)
def test_bad_settings_are_refused_before_anything_runs(
    project: Project, kind: str, settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match="exec") as raised:
        project.produce(kind, **settings)
    assert message in str(raised.value)
    assert list(project.folder.iterdir()) == []


# --- folder ------------------------------------------------------------------------------------------


SITE = "mkdir -p build/site/css && printf '<h1>Hi</h1>' > build/site/index.html && printf 'a{}' > build/site/css/s.css"


def test_a_folder_is_archived_reproducibly(project: Project) -> None:
    first = project.produce("archive", command=SITE + " && sleep 1.1", folder="build/site")
    archive = project.folder / "build" / "site.tar.gz"
    assert first.files == (archive,)
    assert first.digest == sha256(archive)
    second = project.produce("archive", command=SITE, folder="build/site")
    assert second.digest == first.digest  # written again a second later: the same bytes
    assert first.metadata["entries"] == 2

    with gzip.open(archive) as zipped:
        assert zipped.read(1)  # a real gzip stream
    assert archive.read_bytes()[4:8] == b"\0\0\0\0"  # gzip mtime 0
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["site", "site/css", "site/css/s.css", "site/index.html"]
        assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
        extracted = tar.extractfile("site/index.html")
        assert extracted is not None and extracted.read() == b"<h1>Hi</h1>"

    changed = project.produce("archive", command=SITE.replace("Hi", "Hello"), folder="build/site")
    assert changed.digest != first.digest


def test_a_folder_archive_path_and_prefix_are_settings(project: Project) -> None:
    result = project.produce("archive", command=SITE, folder="build/site", archive="out/docs.tgz", prefix="")
    assert result.files == (project.folder / "out" / "docs.tgz",)
    with tarfile.open(result.files[0]) as tar:
        assert tar.getnames() == ["css", "css/s.css", "index.html"]


def test_a_folder_of_a_binary_gives_its_files(project: Project) -> None:
    result = project.produce(command="mkdir -p bin && echo x > bin/one && echo y > bin/two", folder="bin")
    assert result.files == (project.folder / "bin" / "one", project.folder / "bin" / "two")
    assert result.digest == sha256(project.folder / "bin" / "one")


def test_a_folder_not_written_is_named(project: Project) -> None:
    with pytest.raises(ForgeError, match="declared folder build/site was not written"):
        project.produce("archive", command="echo nothing", folder="build/site")
    with pytest.raises(ForgeError, match="declared folder build/site is empty"):
        project.produce("archive", command="mkdir -p build/site", folder="build/site")


# --- layout ------------------------------------------------------------------------------------------


def layout_command(project: Project, *tags: str) -> str:
    (project.folder / "make_layout.py").write_text(MAKE_LAYOUT)
    return f"{PYTHON} make_layout.py image " + " ".join(shlex.quote(t) for t in tags)


def test_a_layout_with_one_image_gives_its_reference_and_digest(project: Project) -> None:
    result = project.produce("container", command=layout_command(project, "-"), layout="image")
    image = (project.folder / "image").resolve()
    assert result.reference == f"oci-layout:{image}"
    reference = parse_reference(result.reference)
    assert reference.path == image  # type: ignore[union-attr]
    index = (image / "index.json").read_text()
    assert result.digest is not None and result.digest.removeprefix("sha256:") in index
    assert (image / "blobs" / "sha256" / result.digest.removeprefix("sha256:")).is_file()
    assert result.metadata["mediaType"] == "application/vnd.oci.image.manifest.v1+json"


def test_a_layout_image_is_chosen_by_its_tag(project: Project) -> None:
    result = project.produce("container", command=layout_command(project, "amd64", "arm64"), layout="image",
                             tag="arm64")
    image = (project.folder / "image").resolve()
    assert result.reference == f"oci-layout:{image}:arm64"
    other = project.produce("container", command=layout_command(project, "amd64", "arm64"), layout="image",
                            tag="amd64")
    assert other.digest != result.digest


def test_a_layout_with_two_images_and_no_tag_is_refused(project: Project) -> None:
    with pytest.raises(ForgeError, match=r"holds 2 images: name one with tag \(tags: amd64, arm64\)"):
        project.produce("container", command=layout_command(project, "amd64", "arm64"), layout="image")


def test_a_layout_without_the_tag_is_refused_naming_its_tags(project: Project) -> None:
    with pytest.raises(ForgeError, match=r"has no image tagged 'v2' \(tags: v1\)"):
        project.produce("container", command=layout_command(project, "v1"), layout="image", tag="v2")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("rm image/oci-layout", "has no oci-layout file"),
        ("rm image/index.json", "has no index.json"),
        ("echo '{not json' > image/index.json", "index.json does not parse"),
        ("rm -r image", "declared layout image: was not written"),
    ],
)
def test_a_broken_layout_is_refused(project: Project, damage: str, message: str) -> None:
    with pytest.raises(ForgeError, match=message):
        project.produce("container", command=layout_command(project, "-") + " && " + damage, layout="image")


def test_a_layout_missing_a_blob_is_refused(project: Project) -> None:
    with pytest.raises(ForgeError, match="names blobs the layout lacks: sha256:"):
        project.produce("container", command=layout_command(project, "-", "--drop-layer"), layout="image")


# --- the command failing, timing out, stopped; secrets ---------------------------------------------------


def test_a_failing_command_reports_its_exit_code_and_last_lines(project: Project) -> None:
    command = "for i in $(seq 1 50); do echo line $i; done; echo broken >&2; exit 7"
    with pytest.raises(ForgeError, match="the command exited with code 7") as raised:
        project.produce(command=command, files=["x"])
    error = raised.value
    assert getattr(error, "exit_code", None) == 7
    assert str(error).endswith("line 49\nline 50\nbroken")
    assert "line 30" not in str(error)  # only the last lines, not the whole log
    assert project.lines[-1] == "broken" and len(project.lines) == 51


def test_a_timeout_kills_the_command(project: Project) -> None:
    started = time.monotonic()
    with pytest.raises(ForgeError, match=r"timed out after 0\.5 s"):
        project.produce(command="echo started; sleep 30 & sleep 30", files=["x"], timeout="500ms")
    assert time.monotonic() - started < 10
    ctx = ExecutionContext(workdir=project.root, timeout=0.5)
    with pytest.raises(ForgeError, match=r"timed out after 0\.5 s"):
        project.produce_with(ctx, command="sleep 30", files=["x"], timeout="1h")


def test_stop_withdraws_the_command(project: Project) -> None:
    ctx = ExecutionContext(workdir=project.root)
    threading.Timer(0.5, ctx.stop.set).start()
    started = time.monotonic()
    with pytest.raises(WorkWithdrawn, match="withdrawn while running"):
        project.produce_with(ctx, command="sleep 30 & sleep 30; touch x", files=["x"])
    assert time.monotonic() - started < 10
    assert not (project.folder / "x").exists()
    with pytest.raises(WorkWithdrawn, match="before it started"):
        project.produce_with(ctx, command="touch x", files=["x"])
    assert not (project.folder / "x").exists()


def test_secrets_reach_the_command_and_are_masked_in_its_log_and_errors(project: Project) -> None:
    secret = "s3cr3t-token-value"
    lines: list[str] = []
    ctx = ExecutionContext(workdir=project.root, secrets={"TOKEN": secret}, log=lines.append)
    project.produce_with(ctx, command='echo "token is $TOKEN"; printf %s "$TOKEN" > out', files=["out"])
    assert (project.folder / "out").read_text() == secret
    assert lines == ["token is ****"]
    with pytest.raises(ForgeError) as raised:
        project.produce_with(ctx, command='echo "$TOKEN"; exit 1', files=["out"])
    assert secret not in str(raised.value) and "****" in str(raised.value)


def test_the_workers_own_environment_stays_out(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGE_API_TOKEN", "worker-credential")
    project.produce(command='printf "[%s]" "$FORGE_API_TOKEN" > env.txt', files=["env.txt"])
    assert (project.folder / "env.txt").read_text() == "[]"
