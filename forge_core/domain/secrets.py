"""Masking secret values in text that is about to be stored or shown."""

from __future__ import annotations

from collections.abc import Iterable

MASK = "****"


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of every secret value replaced by ``****``.

    Longer values first, so a secret that contains another is masked whole. Values shorter than
    four characters are masked too: a leaked short secret is still a leak.
    """
    for value in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text
