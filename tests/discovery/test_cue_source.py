"""Finding where a value path is written in a CUE file (for problems found after evaluation)."""

from __future__ import annotations

from forge_core.services.cue_source import field_positions, locate, locate_in

PROJECT = '''package project

import "strings"

// a comment with { and } in it
artifacts: {
	api: {
		type: "container"
		producer: earthly: {
			target:   "+docker"
			imageRef: "api:\\(strings.ToLower("X")) }"
		}
		publishers: ["images", "bucket"]
	}
}
phases: test: steps: [
	{name: "unit", action: "earthly", settings: {args: {A: "1"}}},
	{
		name: "lint"
		settings: platforms: ["linux/amd64"]
	},
]
notes: """
	a multi-line string { with: braces
	"""
artifacts: api: producer: earthly: os: "linux"
"quoted-key": nested: "value"
'''


def test_a_nested_key_is_found_at_its_line_and_column() -> None:
    assert locate(PROJECT, ("artifacts", "api", "producer", "earthly", "imageRef")) == (11, 4)
    assert locate(PROJECT, ("artifacts", "api", "producer", "earthly", "target")) == (10, 4)


def test_shorthand_fields_and_a_second_declaration_of_a_struct() -> None:
    assert locate(PROJECT, ("phases", "test", "steps")) == (16, 15)
    assert locate(PROJECT, ("artifacts", "api", "producer", "earthly", "os")) == (26, 36)
    assert locate(PROJECT, ("quoted-key", "nested")) == (27, 15)


def test_list_elements_are_counted_across_lines() -> None:
    assert locate(PROJECT, ("artifacts", "api", "publishers", 1)) == (13, 26)
    assert locate(PROJECT, ("phases", "test", "steps", 0, "settings", "args", "A")) == (17, 54)
    assert locate(PROJECT, ("phases", "test", "steps", 1, "settings", "platforms")) == (20, 13)


def test_a_missing_key_points_at_its_deepest_declared_ancestor() -> None:
    assert locate(PROJECT, ("artifacts", "api", "producer", "earthly", "binaryPath")) == (9, 13)
    assert locate(PROJECT, ("phases", "test", "steps", 1, "settings", "args")) == (20, 3)
    assert locate(PROJECT, ("release", "on", 0)) is None


def test_strings_comments_and_imports_declare_nothing() -> None:
    paths = set(field_positions(PROJECT))
    assert ("notes",) in paths
    assert not any("with" in p or "strings" in p or "import" in p for p in paths)
    assert ("artifacts", "api", "producer", "earthly", "imageRef", "X") not in paths


def test_an_index_expression_is_no_list() -> None:
    text = 'spec: image: #artifact["api"].image\nspec: port: 80\n'
    assert set(field_positions(text)) == {("spec",), ("spec", "image"), ("spec", "port")}
    assert locate(text, ("spec", "port")) == (2, 7)


def test_of_several_files_the_one_declaring_the_path_deepest_is_named() -> None:
    files = {"a.cue": "artifacts: api: type: \"container\"\n", "b.cue": "artifacts: api: producer: earthly: {}\n"}
    assert locate_in(files, ("artifacts", "api", "producer", "earthly", "target")) == ("b.cue", (1, 27))
    assert locate_in(files, ("artifacts", "api", "publishers")) == ("a.cue", (1, 12))
    assert locate_in(files, ("release",)) is None
