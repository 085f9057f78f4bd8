"""Custom release aliases from ``release.aliases``: the templates checked (as discovery does,
each problem at its index) and expanded (as the release job does, once the number is known)."""

from __future__ import annotations

import pytest

from forge_core.domain.alias_templates import AliasFacts, AliasTemplateError, check_templates, expand_templates

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def facts(**fields: object) -> AliasFacts:
    values: dict[str, object] = {"number": 42, "project": "api", "commit": COMMIT, "branch": "main"}
    values.update(fields)
    return AliasFacts(**values)  # type: ignore[arg-type]


def test_every_placeholder_is_filled_in() -> None:
    templates = ["latest", "{branch}-latest", "sha-{shortCommit}", "build-{number}", "{project}/{commit}",
                 "v{version}", "{tag}"]
    aliases, skipped = expand_templates(templates, facts(tag="api/v1.2.0", version="1.2.0"))
    assert aliases == ("latest", "main-latest", "sha-0123456", "build-42", f"api/{COMMIT}", "v1.2.0", "api/v1.2.0")
    assert skipped == ()


def test_a_template_naming_a_value_the_release_lacks_gives_no_alias_and_says_why() -> None:
    aliases, skipped = expand_templates(["edge", "v{version}", "{tag}-{branch}"], facts())
    assert aliases == ("edge",)
    assert [(s.template, s.reason) for s in skipped] == [
        ("v{version}", "release 42 has no {version}"), ("{tag}-{branch}", "release 42 has no {tag}")]


def test_characters_an_alias_cannot_hold_become_hyphens_and_plus_an_underscore() -> None:
    aliases, _ = expand_templates(["{branch}-latest", "v{version}"], facts(branch="feat@x y", version="1.0.0+b7"))
    assert aliases == ("feat-x-y-latest", "v1.0.0_b7")


def test_an_expansion_that_is_a_bare_number_or_too_long_is_skipped() -> None:
    aliases, skipped = expand_templates(["{shortCommit}", "{branch}"], facts(commit="1234567" + "8" * 33,
                                                                              branch="b" * 200))
    assert aliases == ()
    assert "a bare number" in skipped[0].reason and "longer than 128 characters" in skipped[1].reason


def test_duplicates_after_expansion_are_one_alias() -> None:
    aliases, _ = expand_templates(["main-latest", "{branch}-latest"], facts())
    assert aliases == ("main-latest",)


@pytest.mark.parametrize(
    ("templates", "index", "message"),
    [
        (["ok", "{colour}"], 1, "unknown placeholder {colour}; known: {number}, {branch}"),
        (["v{number"], 0, "unmatched '{'"),
        (["a}b"], 0, "unmatched '}'"),
        (["stable release"], 0, "' ' cannot be in an alias"),
        ([""], 0, "empty"),
        (["-x"], 0, "must start with a letter, a digit or a placeholder"),
        (["{number}"], 0, "a bare number"),
        (["17"], 0, "a bare number"),
        (["edge", "edge"], 1, "declared twice"),
        (["x" * 129], 0, "longer than 128"),
    ],
)
def test_bad_templates_are_refused_at_their_index(templates: list[str], index: int, message: str) -> None:
    with pytest.raises(AliasTemplateError) as raised:
        check_templates(templates)
    assert raised.value.index == index
    assert message in str(raised.value)


def test_good_templates_pass() -> None:
    assert check_templates(["latest", "{branch}-{number}", "sha-{shortCommit}"]) == (
        "latest", "{branch}-{number}", "sha-{shortCommit}")
