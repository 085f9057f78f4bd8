"""The reproducible tar.gz writer: same files, same bytes, whatever the clock and the file modes say."""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
from pathlib import Path

import pytest

from forge_core.adapters.oci.archive import LayerEntry, write_layer, write_tar_gz, write_tar_gz_of_folder


def _tree(root: Path, *, mtime: int, mode: int) -> Path:
    (root / "docs" / "nested").mkdir(parents=True)
    for name, text in {"b.yaml": "b: 1\n", "a.yaml": "a: 1\n", "docs/nested/c.txt": "c\n"}.items():
        path = root / name
        path.write_text(text)
        path.chmod(mode)
        os.utime(path, (mtime, mtime))
    return root


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_same_files_give_the_same_digest_twice(tmp_path: Path) -> None:
    one = write_tar_gz_of_folder(tmp_path / "one.tar.gz", _tree(tmp_path / "x", mtime=1_000, mode=0o600))
    two = write_tar_gz_of_folder(tmp_path / "two.tar.gz", _tree(tmp_path / "y", mtime=2_000_000, mode=0o664))
    assert _sha(one) == _sha(two)


def test_different_content_gives_a_different_digest(tmp_path: Path) -> None:
    one = write_tar_gz(tmp_path / "one.tar.gz", {"a.yaml": b"a: 1\n"})
    two = write_tar_gz(tmp_path / "two.tar.gz", {"a.yaml": b"a: 2\n"})
    assert _sha(one) != _sha(two)


def test_entries_are_sorted_with_fixed_times_owners_and_modes(tmp_path: Path) -> None:
    tool = tmp_path / "tool"
    tool.write_bytes(b"#!/bin/sh\n")
    tool.chmod(0o700)
    archive = write_tar_gz(tmp_path / "out.tar.gz", {"z.txt": b"z", "bin/tool": tool, "a/b.txt": b"b"})

    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["a", "a/b.txt", "bin", "bin/tool", "z.txt"]
        assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
        assert {m.name: m.mode for m in members} == {
            "a": 0o755,
            "a/b.txt": 0o644,
            "bin": 0o755,
            "bin/tool": 0o755,
            "z.txt": 0o644,
        }
        extracted = tar.extractfile("bin/tool")
        assert extracted is not None and extracted.read() == b"#!/bin/sh\n"
    header = archive.read_bytes()[:10]
    assert header[4:8] == b"\0\0\0\0"  # gzip mtime 0
    assert header[3] & 0x08 == 0  # no file name stored


@pytest.mark.parametrize("name", ["../escape", "", "/"])
def test_a_bad_member_name_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="bad archive member name"):
        write_tar_gz(tmp_path / "x.tar.gz", {name: b"x"})
    assert not list(tmp_path.iterdir())


def test_a_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "link").symlink_to("/etc/passwd")
    with pytest.raises(ValueError, match="only regular files"):
        write_tar_gz_of_folder(tmp_path / "x.tar.gz", tmp_path / "tree")


def test_bytes_and_files_of_one_content_are_archived_alike(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"same")
    path.chmod(0o644)
    assert _sha(write_tar_gz(tmp_path / "1.tar.gz", {"f": path})) == _sha(
        write_tar_gz(tmp_path / "2.tar.gz", {"f": b"same"})
    )


def test_a_layer_knows_its_digest_size_and_diff_id(tmp_path: Path) -> None:
    tool = tmp_path / "tool"
    tool.write_bytes(b"#!/bin/sh\n" * 50_000)  # over a megabyte: streamed through both hashes
    layer = write_layer(tmp_path / "layer.tar.gz", [LayerEntry("/usr/bin/tool", tool), LayerEntry("etc/x", b"x")])
    packed = layer.path.read_bytes()
    assert layer.digest == "sha256:" + hashlib.sha256(packed).hexdigest() and layer.size == len(packed)
    assert layer.diff_id == "sha256:" + hashlib.sha256(gzip.decompress(packed)).hexdigest()
    assert not list(tmp_path.glob(".*partial"))


def test_a_layer_takes_its_time_modes_and_owners(tmp_path: Path) -> None:
    entries = [LayerEntry("app/run", b"x", mode=0o4750, uid=1000, gid=100), LayerEntry("app/data", b"d")]
    layer = write_layer(tmp_path / "layer.tar.gz", entries, mtime=1_700_000_000)
    with tarfile.open(layer.path) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert list(members) == ["app", "app/data", "app/run"]
    assert {m.mtime for m in members.values()} == {1_700_000_000}
    assert (members["app/run"].mode, members["app/run"].uid, members["app/run"].gid) == (0o4750, 1000, 100)
    assert (members["app"].mode, members["app"].uid, members["app/data"].mode) == (0o755, 0, 0o644)
    assert {m.uname for m in members.values()} == {""}


def test_a_layer_has_pax_headers_only_where_ustar_cannot_hold_a_name(tmp_path: Path) -> None:
    deep = "a" * 120 + "/" + "b" * 120
    layer = write_layer(tmp_path / "layer.tar.gz", [LayerEntry("short", b"s"), LayerEntry(deep, b"d")])
    with tarfile.open(layer.path) as tar:
        headers = {m.name: m.pax_headers for m in tar.getmembers()}
    assert headers["short"] == {} and headers["a" * 120] == {"path": "a" * 120 + "/"}
    assert headers[deep] == {"path": deep}


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([LayerEntry("a", b"1"), LayerEntry("/a", b"2")], "'a' is given twice"),
        ([LayerEntry("a", b"1"), LayerEntry("a/b", b"2")], "'a' is both a file and a folder"),
    ],
)
def test_a_layer_refuses_a_name_twice(tmp_path: Path, entries: list[LayerEntry], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_layer(tmp_path / "layer.tar.gz", entries)
    assert not list(tmp_path.iterdir())
