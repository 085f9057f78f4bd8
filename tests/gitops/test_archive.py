"""The safe tar.gz reader: every refusal names the entry and the rule; bombs stop at the limit, fast."""

from __future__ import annotations

import gzip
import io
import tarfile
import time
import tracemalloc

import pytest

from forge_core.adapters.archive import read_yaml_layer
from forge_core.domain.resources import ArchiveError, ArchiveLimits, LayerFile, MiB

LONG = "a/" + "x" * 120 + "/../../../evil.yaml"
DEPLOYMENT = b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n"


def layer(*members: tuple[tarfile.TarInfo, bytes | None]) -> io.BytesIO:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped, tarfile.open(fileobj=zipped, mode="w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    buffer.seek(0)
    return buffer


def entry(name: str, data: bytes = b"", *, kind: bytes = tarfile.REGTYPE, link: str = "") -> tuple[tarfile.TarInfo,
                                                                                                   bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        return info, data
    return info, None


def refused(stream: io.BytesIO, limits: ArchiveLimits | None = None) -> ArchiveError:
    with pytest.raises(ArchiveError) as error:
        read_yaml_layer(stream, limits)
    return error.value


def test_a_valid_layer_is_read_back_sorted_by_name() -> None:
    files = read_yaml_layer(layer(
        entry("b/service.yml", b"kind: Service\n"),
        entry("./a.yaml", DEPLOYMENT),
        entry("b", kind=tarfile.DIRTYPE),
        entry("./", kind=tarfile.DIRTYPE),
    ))
    assert files == (
        LayerFile(name="a.yaml", data=DEPLOYMENT),
        LayerFile(name="b/service.yml", data=b"kind: Service\n"),
    )


@pytest.mark.parametrize(
    ("member", "rule", "named"),
    [
        (entry("../../etc/cron.d/evil.yaml", DEPLOYMENT), "parent_component", "../../etc/cron.d/evil.yaml"),
        (entry("ok/../../evil.yaml", DEPLOYMENT), "parent_component", "ok/../../evil.yaml"),
        (entry(LONG, DEPLOYMENT), "parent_component", LONG),  # the name travels in a pax header
        (entry("/etc/evil.yaml", DEPLOYMENT), "absolute_path", "/etc/evil.yaml"),
        (entry("link.yaml", kind=tarfile.SYMTYPE, link="/etc/shadow"), "symlink", "link.yaml"),
        (entry("hard.yaml", kind=tarfile.LNKTYPE, link="a.yaml"), "hardlink", "hard.yaml"),
        (entry("dev.yaml", kind=tarfile.CHRTYPE), "device", "dev.yaml"),
        (entry("disk.yaml", kind=tarfile.BLKTYPE), "device", "disk.yaml"),
        (entry("pipe.yaml", kind=tarfile.FIFOTYPE), "fifo", "pipe.yaml"),
        (entry("run.sh", b"#!/bin/sh\n"), "not_yaml", "run.sh"),
        (entry("win\\evil.yaml", DEPLOYMENT), "backslash", "win\\evil.yaml"),
        (entry(".", DEPLOYMENT), "not_yaml", "."),
    ],
)
def test_unsafe_entries_are_refused_naming_entry_and_rule(
    member: tuple[tarfile.TarInfo, bytes | None], rule: str, named: str
) -> None:
    error = refused(layer(entry("a.yaml", DEPLOYMENT), member))
    assert (error.rule, error.entry) == (rule, named)
    assert named in str(error) and f"rule: {rule}" in str(error)


def test_a_name_seen_twice_is_refused_even_when_spelled_differently() -> None:
    error = refused(layer(entry("a.yaml", DEPLOYMENT), entry("./a.yaml", b"kind: Other\n")))
    assert (error.rule, error.entry) == ("duplicate", "a.yaml")


def test_a_file_over_the_single_file_limit_is_refused_before_it_is_read() -> None:
    big = io.BytesIO()
    with gzip.GzipFile(fileobj=big, mode="wb") as zipped:
        info = tarfile.TarInfo("huge.yaml")
        info.size = 1024 * MiB  # the header alone: refused without the content being there at all
        zipped.write(info.tobuf())
    big.seek(0)
    error = refused(big)
    assert (error.rule, error.entry) == ("max_file_bytes", "huge.yaml")


def test_not_a_gzip_stream_is_refused() -> None:
    assert refused(io.BytesIO(b"PK\x03\x04 a zip file")).rule == "format"
    assert refused(io.BytesIO(gzip.compress(b"not a tar" * 100))).rule == "format"


def test_a_truncated_layer_is_refused() -> None:
    data = layer(entry("a.yaml", DEPLOYMENT * 200)).getvalue()
    assert refused(io.BytesIO(data[: len(data) // 2])).rule == "format"


@pytest.fixture(scope="module")
def gigabyte_bomb() -> bytes:
    """1 GiB of zeros in 15 MiB ``.yaml`` files (each within the file limit), gzip-compressed to ~1 MiB.

    A gzip stream may hold several members, read as one: the compressed zeros are made once and reused.
    """
    size = 15 * MiB
    zeros = gzip.compress(bytes(size), compresslevel=9)
    members = []
    for index in range(1024 * MiB // size + 1):
        info = tarfile.TarInfo(f"part-{index:05}.yaml")
        info.size = size
        members += [gzip.compress(info.tobuf()), zeros]
    return b"".join(members)


class _CountingReader(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.requested = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.requested += len(chunk)
        return chunk


def test_a_gzip_bomb_stops_at_the_total_limit_fast_without_inflating_further(gigabyte_bomb: bytes) -> None:
    assert len(gigabyte_bomb) < 2 * MiB
    stream = _CountingReader(gigabyte_bomb)
    started = time.perf_counter()
    error = refused(stream)
    elapsed = time.perf_counter() - started
    assert error.rule == "max_total_bytes"
    assert f"more than {64 * MiB} bytes" in str(error)
    assert elapsed < 10, f"took {elapsed:.1f} s"  # about 1 s here; inflating all of it takes far longer
    # ~64 MiB inflated of 1 GiB: well under a tenth of the compressed stream was read
    assert stream.requested < len(gigabyte_bomb) / 10


def test_a_gzip_bomb_does_not_use_memory_beyond_the_limit(gigabyte_bomb: bytes) -> None:
    limits = ArchiveLimits(max_total_bytes=8 * MiB, max_file_bytes=16 * MiB)
    tracemalloc.start()
    try:
        error = refused(io.BytesIO(gigabyte_bomb), limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.rule == "max_total_bytes"
    assert peak < 40 * MiB, f"peak {peak / MiB:.0f} MiB"


@pytest.fixture(scope="module")
def hundred_thousand_files() -> bytes:
    """100,000 empty ``.yaml`` files: one header, its name and checksum patched per entry (fast to make)."""
    template = bytearray(tarfile.TarInfo("r/000000.yaml").tobuf())
    headers = bytearray()
    for index in range(100_000):
        header = template.copy()
        header[2:8] = b"%06d" % index
        header[148:156] = b" " * 8
        header[148:156] = b"%06o\0 " % sum(header)
        headers += header
    return gzip.compress(bytes(headers) + bytes(1024), compresslevel=1)


def test_a_hundred_thousand_tiny_files_are_refused_at_the_count_limit_quickly(hundred_thousand_files: bytes) -> None:
    stream = _CountingReader(hundred_thousand_files)
    started = time.perf_counter()
    error = refused(stream)
    elapsed = time.perf_counter() - started
    assert (error.rule, error.entry) == ("max_entries", "r/010000.yaml")  # the 10,001st entry
    assert "more than 10000 entries" in str(error)
    assert stream.requested < len(hundred_thousand_files) / 5  # the other 90,000 entries were never read
    assert elapsed < 10, f"took {elapsed:.1f} s"  # about 1 s here, on a quiet machine


def test_limits_are_parameters() -> None:
    three = layer(*(entry(f"{i}.yaml", DEPLOYMENT) for i in range(3)))
    assert refused(three, ArchiveLimits(max_entries=2)).rule == "max_entries"
    three.seek(0)
    assert refused(three, ArchiveLimits(max_file_bytes=10)).rule == "max_file_bytes"
    three.seek(0)
    assert len(read_yaml_layer(three, ArchiveLimits(max_entries=3))) == 3


@pytest.mark.parametrize("field", ["max_total_bytes", "max_file_bytes", "max_entries"])
def test_limits_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ArchiveLimits.model_validate({field: 0})


def test_default_limits_are_the_safe_ones() -> None:
    assert ArchiveLimits() == ArchiveLimits(max_total_bytes=64 * MiB, max_file_bytes=16 * MiB, max_entries=10_000)

