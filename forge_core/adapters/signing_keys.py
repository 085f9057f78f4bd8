"""The tracking images' signing and verification keys, from settings or generated once per machine.

With no ``tracking.signing_key_file`` configured, an Ed25519 key is generated the first time it is
needed at ``<state_dir>/keys/tracking-signing.pem`` (mode 0600, its public key beside it as
``tracking-signing.pub.pem``), so ``forge run`` signs out of the box and ``forge inspect`` verifies
on the same machine. Creation is atomic (a temporary file linked into place): two processes racing
end up with the one key.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from forge_core.domain.errors import ConfigurationError
from forge_core.services.signing import Signer, Verifier, load_public_key, public_pem
from forge_core.settings import Settings

LOCAL_KEY = Path("keys") / "tracking-signing.pem"
LOCAL_PUBLIC_KEY = Path("keys") / "tracking-signing.pub.pem"


def load_signer(settings: Settings) -> Signer:
    """The configured signing key, or the machine's local one (generated on first use)."""
    tracking = settings.tracking
    if tracking.signing_key_file is not None:
        path = tracking.signing_key_file
        password = tracking.signing_key_password.get_secret_value() if tracking.signing_key_password else None
        return Signer.from_pem(_read(path, "FORGE_TRACKING__SIGNING_KEY_FILE"), password=password, where=str(path))
    return _local_signer(settings.state_dir)


def load_verifier(settings: Settings) -> Verifier | None:
    """The trusted public keys: ``tracking.public_key_files``, the configured signing key's and the
    local key's (when it exists); None when there is none at all."""
    keys = [
        load_public_key(_read(path, "FORGE_TRACKING__PUBLIC_KEY_FILES"), str(path))
        for path in settings.tracking.public_key_files
    ]
    if settings.tracking.signing_key_file is not None:
        keys.append(load_signer(settings).public_key)
    local = settings.state_dir / LOCAL_PUBLIC_KEY
    if local.is_file():
        keys.append(load_public_key(local.read_bytes(), str(local)))
    return Verifier(keys) if keys else None


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read key file {path}: {exc.strerror}", where=setting) from None


def _local_signer(state_dir: Path) -> Signer:
    private = state_dir / LOCAL_KEY
    if not private.is_file():
        key = ed25519.Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _create_once(private, pem, 0o600)
    signer = Signer.from_pem(private.read_bytes(), where=str(private))
    public = state_dir / LOCAL_PUBLIC_KEY
    if not public.is_file():
        _create_once(public, public_pem(signer.public_key), 0o644)
    return signer


def _create_once(path: Path, content: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".key-")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        with contextlib.suppress(FileExistsError):  # another process made it first: theirs is kept
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
