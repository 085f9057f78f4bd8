"""Masking secret values in text that is about to be stored or shown."""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

MASK = "****"


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of every secret value replaced by ``****``.

    Longer values first, so a secret that contains another is masked whole. Values shorter than
    four characters are masked too: a leaked short secret is still a leak.
    """
    for value in sorted(_values(secrets), key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


def safe_cut(text: str, secrets: Iterable[str], cut: int) -> int:
    """The greatest position at most ``cut`` that splits no secret of ``text`` in any masked form.

    Text read in pieces is masked a piece at a time: cut there, what comes before holds every
    secret it touches whole, and what comes after can be masked with the next piece."""
    forms = _values(secrets)
    cut = max(cut, 0)
    moved = True
    while moved:
        moved = False
        for form in forms:
            start = text.find(form, max(cut - len(form) + 1, 0), cut + len(form) - 1)
            if start != -1 and start < cut:
                cut, moved = start, True
    return cut


def mask_across(before: str, after: str, secrets: Iterable[str]) -> tuple[str, str]:
    """``before`` and ``after``, two lines in a row, with every secret that begins at the end of
    ``before`` and ends at the start of ``after`` masked on both sides.

    A step that prints a secret with a carriage return (or a line break) in its middle, as a
    progress display or an obfuscating script does, shows it as two lines, neither of which holds
    the whole value."""
    for form in sorted(_values(secrets), key=len, reverse=True):
        for head in range(len(form) - 1, 0, -1):
            if before.endswith(form[:head]) and after.startswith(form[head:]):
                before, after = before[:-head] + MASK, MASK + after[len(form) - head:]
                break
    return before, after


def may_begin_secret(text: str, secrets: Iterable[str], least: int = 4) -> bool:
    """Whether ``text`` ends with the first ``least`` or more characters (not all) of a secret in
    a masked form: the line after it could hold the rest (a shorter fragment reveals little)."""
    return any(text.endswith(form[:head]) for form in _values(secrets) for head in range(least, len(form)))


def longest_form(secrets: Iterable[str]) -> int:
    """The length of the longest text :func:`mask_secrets` masks for ``secrets`` (0 if none)."""
    return max((len(form) for form in _values(secrets)), default=0)


def _values(secrets: Iterable[str]) -> set[str]:
    """Each secret in the forms it is commonly printed in, and each line of a multi-line one.

    Logs are masked a line at a time, so a key in PEM form (or a value split by ``\r``) must be
    recognised line by line; lines of a few characters are common words and are left alone. A
    step that prints a secret base64- or URL-encoded leaks it as surely as one that prints it
    plainly, so those encodings are masked too (an encoding of a longer text that merely contains
    the secret cannot be recognised, and is not)."""
    values = {s for s in secrets if s}
    for secret in list(values):
        lines = secret.splitlines()
        if len(lines) > 1:
            values |= {line.strip() for line in lines if len(line.strip()) >= 8}
        values |= _encodings(secret)
    return values


def _encodings(secret: str) -> set[str]:
    raw = secret.encode()
    encoded = {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    encoded |= {e.rstrip("=") for e in encoded}
    encoded |= {urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}
    return {e for e in encoded if e != secret and len(e) >= 4}


def redact_url(url: str) -> str:
    """``url`` without the credentials of its userinfo (``https://user:token@host/…`` →
    ``https://****@host/…``), so a repository URL can be named in errors and logs."""
    scheme, separator, rest = url.partition("://")
    if not separator or "@" not in rest.split("/", 1)[0]:
        return url
    return f"{scheme}://{MASK}@{rest.split('@', 1)[1]}"


def redact_urls(text: str, url: str) -> str:
    """``text`` (git's stderr, a message) with ``url`` and its credentials redacted."""
    return text.replace(url, redact_url(url)) if url else text


@dataclass(frozen=True)
class ResolvedSecrets:
    """The values resolved for one target or step, by the names its configuration gave them.

    Never printed: the repr names the keys only. ``mask`` hides exactly these values (with the
    rules of :func:`mask_secrets`) in text about to be stored or shown.
    """

    values: Mapping[str, str] = field(default_factory=dict, repr=False)

    def mask(self, text: str) -> str:
        return mask_secrets(text, self.values.values())

    def __repr__(self) -> str:
        return f"ResolvedSecrets(names={sorted(self.values)!r})"


class LoginError(ValueError):
    """A target's credentials are malformed (the message names what is wrong, never a value)."""


def login_from_secrets(secrets: Mapping[str, str], *, token_username: str) -> tuple[str, str] | None:
    """(user name, password) from a publisher target's resolved credentials, or None when it has none.

    ``repo.cue`` gives a target one unnamed reference (``default``): ``user:password`` (split at the
    first colon, as in HTTP basic auth, where a user name holds none) or a token alone (no colon),
    sent as the password of ``token_username`` (PyPI's ``__token__``; registries that take personal
    access tokens accept any user name). Callers that name their credentials give ``username`` and
    ``password`` (both, or the password alone for a token), or ``token``.
    """
    username, password = secrets.get("username"), secrets.get("password")
    if username and not password:
        raise LoginError("'username' is given without 'password'")
    if password:
        return username or token_username, password
    if secrets.get("token"):
        return token_username, secrets["token"]
    single = secrets.get("default", "")
    if not single:
        return None
    user, colon, rest = single.partition(":")
    if not colon:
        return token_username, single
    if user and rest:
        return user, rest
    raise LoginError("the credentials reference's value is neither `user:password` nor a token (an empty side of ':')")
