"""Secret values are masked in every form a step commonly prints them in."""

from __future__ import annotations

import base64
import subprocess
import urllib.parse

import pytest

from forge_core.domain.logs import read_output
from forge_core.domain.secrets import MASK, mask_secrets

SECRET = "s3cr3t/t0ken+with=odd&chars"


@pytest.mark.parametrize(
    "printed",
    [
        SECRET,
        base64.b64encode(SECRET.encode()).decode(),
        base64.b64encode(SECRET.encode()).decode().rstrip("="),
        base64.urlsafe_b64encode(SECRET.encode()).decode(),
        urllib.parse.quote(SECRET, safe=""),
        urllib.parse.quote_plus(SECRET),
    ],
    ids=["plain", "base64", "base64-unpadded", "base64-url", "percent", "percent-plus"],
)
def test_a_secret_is_masked_in_its_common_encodings(printed: str) -> None:
    line = f"Authorization: {printed} (sent)"
    assert mask_secrets(line, [SECRET]) == f"Authorization: {MASK} (sent)"


def test_a_secret_split_by_carriage_returns_is_masked_line_by_line() -> None:
    secret = "first-half-of-it\rsecond-half-of-it"
    assert mask_secrets("progress second-half-of-it", [secret]) == f"progress {MASK}"
    assert mask_secrets(f"all: {secret}", [secret]) == f"all: {MASK}"


def test_short_lines_of_a_multi_line_secret_are_not_masked_as_words() -> None:
    secret = "-----BEGIN KEY-----\nabc\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END KEY-----"
    masked = mask_secrets("abc MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", [secret])
    assert masked == f"abc {MASK}"


def _printed(script: str, secret: str) -> list[str]:
    """What a real process printing ``script`` leaves in the log (read as the step runners do)."""
    process = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, text=True, env={"S": secret})
    assert process.stdout is not None
    lines = list(read_output(process.stdout, [secret], size=64))
    assert process.wait() == 0
    return lines


@pytest.mark.parametrize("separator", ["\\r", "\\r\\n", "\\n"], ids=["cr", "crlf", "lf"])
def test_a_secret_split_across_two_lines_is_masked_on_both(separator: str) -> None:
    secret = "tok-0123456789abcdef"
    for head in (1, 3, 4, 10, len(secret) - 1):
        script = f'printf "progress %s{separator}%s done\\n" "${{S%"${{S#{"?" * head}}}"}}" "${{S#{"?" * head}}}"'
        lines = _printed(script, secret)
        shown = "\n".join(lines)
        assert secret[head:] not in shown, (head, lines)
        if head >= 4:
            assert secret[:head] not in shown, (head, lines)
        assert lines[-1] == f"{MASK} done", lines


def test_encoded_secrets_split_by_a_carriage_return_are_masked() -> None:
    encoded = base64.b64encode(SECRET.encode()).decode()
    lines = _printed(f'printf "{encoded[:12]}\\r{encoded[12:]}\\n"', SECRET)
    assert lines == [MASK, MASK]


def test_lines_that_merely_look_like_a_secrets_start_are_shown_unchanged() -> None:
    secret = "tok-0123456789abcdef"
    lines = _printed('printf "a tok-01\\nnothing more\\nlast tok-\\n"', secret)
    assert lines == ["a tok-01", "nothing more", "last tok-"]
