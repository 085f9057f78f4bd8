"""Step logs are bounded: long lines split and marked, a log past its size keeps head and tail."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from forge_core.adapters.storage import FsspecStore
from forge_core.domain.logs import CONTINUATION, split_line
from forge_core.settings.storage import LogSettings, StorageSettings
from forge_exec.runner import READ_CHUNK

MiB = 1024 * 1024


def test_a_long_line_is_split_and_every_later_piece_marked(tmp_path: Path) -> None:
    store = FsspecStore(str(tmp_path), logs=LogSettings(max_line_length=100))
    line = "".join(f"{i:05d}" for i in range(100))  # 500 characters
    with store.open_log("logs/r/t/s.log", ("00042",)) as sink:
        sink.write_line("short")
        sink.write_line(line)
    stored = (tmp_path / "logs/r/t/s.log").read_text().splitlines()
    assert stored[0] == "short"
    pieces = stored[1:]
    assert len(pieces) == 6 and all(len(p) <= 100 for p in pieces)
    assert not pieces[0].startswith(CONTINUATION) and all(p.startswith(CONTINUATION) for p in pieces[1:])
    assert "".join(p.removeprefix(CONTINUATION) for p in pieces) == line.replace("00042", "****")


def test_split_line_leaves_short_lines_alone() -> None:
    assert split_line("abc", 3) == ["abc"]
    assert split_line("abcdefg", 4) == ["abcd", CONTINUATION + "ef", CONTINUATION + "g"]


def test_a_log_past_its_size_keeps_head_and_tail_and_says_how_much_was_dropped(tmp_path: Path) -> None:
    store = FsspecStore(str(tmp_path), logs=LogSettings(max_bytes=MiB))
    lines = [f"line {i:07d} " + "x" * 100 for i in range(30000)]  # about 3.4 MB
    with store.open_log("logs/r/t/s.log") as sink:
        for line in lines:
            sink.write_line(line)
    path = tmp_path / "logs/r/t/s.log"
    stored = path.read_text().splitlines()
    marks = [i for i, text in enumerate(stored) if text.startswith("[… ")]
    assert len(marks) == 1
    head, mark, tail = stored[: marks[0]], stored[marks[0]], stored[marks[0] + 1 :]
    assert head == lines[: len(head)] and tail == lines[len(lines) - len(tail) :]
    kept = len(head) + len(tail)
    found = re.match(r"\[… (\d+) bytes in (\d+) lines dropped: .*FORGE_STORAGE__LOGS__MAX_BYTES", mark)
    assert found is not None
    assert int(found.group(2)) == len(lines) - kept
    assert int(found.group(1)) == sum(len(line) + 1 for line in lines[len(head) : len(lines) - len(tail)])
    assert MiB - 200 < path.stat().st_size - len(mark) - 1 <= MiB
    assert len("\n".join(head)) <= MiB // 2


def test_the_store_takes_its_log_limits_from_the_settings(tmp_path: Path) -> None:
    settings = StorageSettings(url=str(tmp_path), logs=LogSettings(max_line_length=80, max_bytes=2 * MiB))
    assert FsspecStore.from_settings(settings).logs == settings.logs


# A real exec step printing one 200 MB line, into a real log, in a fresh interpreter (so its peak
# memory is this step's alone).
STEP = """
import json, resource, sys
from pathlib import Path
from forge_core.adapters.storage import FsspecStore
from forge_core.sdk import ExecutionContext, ProjectRef, StepSpec
from forge_exec.runner import ExecStepRunner

store = FsspecStore(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with store.open_log("logs/r/t/s.log", ("secret-value",)) as sink:
    outcome = ExecStepRunner().run(
        StepSpec(name="s", action="exec", target="head -c 200000000 /dev/zero | tr '\\\\0' a; echo; echo done"),
        ProjectRef(name="p", path="."),
        ExecutionContext(workdir=Path(sys.argv[1]), log=sink.write_line),
    )
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"status": outcome.status.value, "before_kb": before, "peak_kb": peak}))
"""


def test_a_200_mb_line_keeps_memory_flat_and_the_log_bounded(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", STEP, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "success"
    grown = (report["peak_kb"] - report["before_kb"]) / 1024
    assert grown < 60, f"the step's output took {grown:.0f} MiB"  # an unbounded line took 900+
    path = tmp_path / "logs/r/t/s.log"
    limits = LogSettings()
    assert path.stat().st_size <= limits.max_bytes + 200
    with path.open(encoding="utf-8") as log:
        first = log.readline()  # the runner's first piece of the line
        assert first == "a" * READ_CHUNK + "\n"
        second = log.readline()
        assert second.startswith(CONTINUATION + "a")
        rest = log.read()
    assert "bytes in" in rest and "lines dropped" in rest
    assert rest.endswith("a\ndone\n")


def test_read_output_never_cuts_a_secret_between_pieces() -> None:
    import io

    from forge_core.domain.logs import read_output

    secret = "0123456789abcdef"
    text = ("x" * 10 + secret) * 20 + "\nshort\n" + "y" * 7 + secret
    pieces = list(read_output(io.StringIO(text), [secret], size=8))
    joined = "".join(p.removeprefix(CONTINUATION) for p in pieces)
    assert secret not in joined and "0123" not in joined
    assert joined == ("x" * 10 + "****") * 20 + "short" + "y" * 7 + "****"
    assert "short" in pieces and pieces[pieces.index("short") + 1].startswith("y")


def test_pieces_of_a_line_handed_over_whole_are_those_of_the_masked_line() -> None:
    from forge_core.domain.logs import bounded_pieces

    secret = "s3cr3t-value"
    for length in (0, 5, 99, 100, 101, 399, 400, 401, 1000, 12345):
        for offset in (0, 95, 98, 190, 383):  # secrets across the windows' edges
            line = ("ab" * length)[:length]
            line = line[:offset] + secret + line[offset:] + secret
            expected = split_line(line.replace(secret, "****"), 100)
            assert list(bounded_pieces(line, 100, (secret,))) == expected, (length, offset)
    assert list(bounded_pieces("", 100)) == [""]


def test_a_200_mb_line_written_whole_costs_the_sink_a_few_pieces(tmp_path: Path) -> None:
    import tracemalloc

    store = FsspecStore(str(tmp_path), logs=LogSettings(max_bytes=2 * MiB))
    line = "z" * (100 * MiB) + "secret-value" + "z" * (100 * MiB)
    with store.open_log("logs/r/t/s.log", ("secret-value",)) as sink:
        tracemalloc.start()
        try:
            sink.write_line(line)  # a runner that logs a whole line, not read_output's pieces
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 8 * MiB, f"writing the line took {peak / MiB:.0f} MiB"  # a masked copy and a list: 400+
    with (tmp_path / "logs/r/t/s.log").open(encoding="utf-8") as log:
        assert log.readline() == "z" * LogSettings().max_line_length + "\n"
        rest = log.read()
    assert "secret-value" not in rest and rest.endswith("z\n") and "bytes in" in rest
