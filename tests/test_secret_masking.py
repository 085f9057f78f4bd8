"""Secret values are masked in every form a step commonly prints them in."""

from __future__ import annotations

import base64
import urllib.parse

import pytest

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
