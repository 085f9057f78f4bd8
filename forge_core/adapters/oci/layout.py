"""The OCI store in a folder: one OCI image layout per repository (the embedded default).

``<root>/<repository>/`` holds ``oci-layout``, ``index.json`` and ``blobs/sha256/<hex>``, exactly
what ``skopeo copy oci:<root>/<repository>:<tag> …`` and ``umoci`` read. Tags are the
``org.opencontainers.image.ref.name`` annotation of an ``index.json`` entry. Every file is written
to a temporary name and renamed, so a crash leaves the old content or the new, never half; the
read-modify-write of ``index.json`` holds a lock (a file beside the layout, so the layout itself
stays exactly standard). Referrers use the same tag-schema fallback as a registry without the
referrers API: an index tagged ``sha256-<subject hex>``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from forge_core.adapters.files import write_atomically
from forge_core.adapters.oci.streams import file_chunks, file_digest, receive
from forge_core.domain.oci import (
    INDEX,
    REF_NAME,
    Descriptor,
    FetchedManifest,
    Index,
    Manifest,
    OciDigestMismatch,
    OciNotFound,
    OciReferenceError,
    OciRejected,
    OciTooLarge,
    canonical_json,
    check_digest,
    check_tag,
    fallback_tag,
    manifest_bytes,
    parse_manifest,
    referrer_descriptor,
    sha256_digest,
)
from forge_core.ports.oci import DEFAULT_MAX_BLOB_SIZE, fallback_referrers

if TYPE_CHECKING:  # imported when a write takes the lock: reading a layout (the CMP) needs none
    import filelock

LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'


class LayoutStore:
    """An :class:`~forge_core.ports.oci.OciStore` on a folder of OCI image layouts."""

    def __init__(self, root: Path, *, lock_timeout: float = 60.0) -> None:
        self._root = root
        self._lock_timeout = lock_timeout

    @property
    def location(self) -> str:
        return str(self._root)

    # --- the port -----------------------------------------------------------------------------

    def blob_exists(self, repository: str, digest: str) -> bool:
        return self._blob(repository, digest).is_file()

    def push_blob(
        self,
        repository: str,
        content: Path | bytes,
        media_type: str,
        *,
        annotations: dict[str, str] | None = None,
        mount_from: Sequence[str] = (),
    ) -> Descriptor:
        self._layout(repository)
        if isinstance(content, bytes):
            descriptor = Descriptor.of(content, media_type, annotations=annotations)
        else:
            digest, size = file_digest(content)
            descriptor = Descriptor(media_type=media_type, digest=digest, size=size, annotations=annotations)
        if self.blob_exists(repository, descriptor.digest):
            return descriptor
        if any(self._mount(repository, source, descriptor.digest) for source in mount_from if source != repository):
            return descriptor
        target = self._blob(repository, descriptor.digest)
        if isinstance(content, bytes):
            write_atomically(target, content)
        else:  # verified again while copying: a file changed since it was hashed is refused
            receive(file_chunks(content)(), descriptor, target, registry=self.location, where=repository)
        return descriptor

    def push_manifest(
        self, repository: str, manifest: Manifest | Index | FetchedManifest, *, tags: Sequence[str] = ()
    ) -> Descriptor:
        for tag in tags:
            check_tag(tag, registry=self.location, reference=repository)
        descriptor = self._store_manifest(repository, manifest)
        with self._index(repository) as entries:
            _place(entries, descriptor, tags)
        return descriptor

    def resolve(self, repository: str, tag: str) -> Descriptor:
        check_tag(tag, registry=self.location, reference=repository)
        for entry in self._entries(repository):
            if (entry.annotations or {}).get(REF_NAME) == tag:
                return Descriptor(media_type=entry.media_type, digest=entry.digest, size=entry.size)
        raise OciNotFound(f"no tag {tag!r}", registry=self.location, reference=f"{repository}:{tag}")

    def fetch_manifest(self, repository: str, reference: str) -> FetchedManifest:
        pinned = ":" in reference  # a digest (tags have no colon)
        where = f"{repository}{'@' if pinned else ':'}{reference}"
        if pinned:
            digest, media_type = check_digest(reference, registry=self.location, reference=repository), None
        else:
            tagged = self.resolve(repository, reference)
            digest, media_type = tagged.digest, tagged.media_type
        try:
            raw = self._blob(repository, digest).read_bytes()
        except FileNotFoundError:
            raise OciNotFound("no such manifest", registry=self.location, reference=where) from None
        if sha256_digest(raw) != digest:
            raise OciDigestMismatch(
                f"manifest bytes hash to {sha256_digest(raw)}, expected {digest}",
                registry=self.location,
                reference=where,
            )
        document = parse_manifest(raw, media_type, registry=self.location, reference=where)
        return FetchedManifest(Descriptor.of(raw, document.media_type), raw, document)

    def fetch_blob(
        self, repository: str, descriptor: Descriptor, destination: Path, *, max_size: int = DEFAULT_MAX_BLOB_SIZE
    ) -> Path:
        where = f"{repository}@{descriptor.digest}"
        if descriptor.size > max_size:
            raise OciTooLarge(
                f"blob of {descriptor.size} bytes, over the limit of {max_size}",
                registry=self.location,
                reference=where,
            )
        source = self._blob(repository, descriptor.digest)
        if not source.is_file():
            raise OciNotFound("no such blob", registry=self.location, reference=where)
        receive(file_chunks(source)(), descriptor, destination, registry=self.location, where=where)
        return destination

    def referrers(self, repository: str, subject: str, *, artifact_type: str | None = None) -> list[Descriptor]:
        check_digest(subject, registry=self.location, reference=repository)
        return fallback_referrers(self, repository, subject, artifact_type)

    def attach_referrer(self, repository: str, manifest: Manifest, *, tags: Sequence[str] = ()) -> Descriptor:
        if manifest.subject is None:
            raise OciReferenceError("a referrer needs a subject", registry=self.location, reference=repository)
        for tag in tags:
            check_tag(tag, registry=self.location, reference=repository)
        descriptor = self._store_manifest(repository, manifest)
        entry = referrer_descriptor(manifest, canonical_json(manifest))
        tag = fallback_tag(manifest.subject.digest)
        with self._index(repository) as entries:  # one lock: the referrer and the fallback index land together
            _place(entries, descriptor, tags)
            current = next((e for e in entries if (e.annotations or {}).get(REF_NAME) == tag), None)
            listed = list(self._read_index_blob(repository, current).manifests) if current else []
            if not any(e.digest == entry.digest for e in listed):
                index = Index(manifests=[*listed, entry])
                raw = canonical_json(index)
                write_atomically(self._blob(repository, sha256_digest(raw)), raw)
                _place(entries, Descriptor.of(raw, INDEX), [tag])
        return descriptor

    # --- internals -----------------------------------------------------------------------------

    def _folder(self, repository: str) -> Path:
        parts = repository.split("/")
        if not repository or any(part in ("", ".", "..") for part in parts) or repository.startswith("/"):
            raise OciReferenceError(
                f"bad repository name {repository!r}: a relative path without '.' or '..' parts",
                registry=self.location,
                reference=repository,
            )
        return self._root.joinpath(*parts)

    def _blob(self, repository: str, digest: str) -> Path:
        check_digest(digest, registry=self.location, reference=repository)
        return self._folder(repository) / "blobs" / "sha256" / digest.removeprefix("sha256:")

    def _layout(self, repository: str) -> Path:
        """The repository's layout folder, created (``oci-layout``, empty ``index.json``) if new."""
        folder = self._folder(repository)
        (folder / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        if not (folder / "oci-layout").is_file():
            write_atomically(folder / "oci-layout", LAYOUT_FILE)
        if not (folder / "index.json").is_file():
            with self._lock(folder):
                if not (folder / "index.json").is_file():
                    write_atomically(folder / "index.json", canonical_json(Index()))
        return folder

    def _lock(self, folder: Path) -> filelock.FileLock:
        import filelock

        return filelock.FileLock(folder.parent / f".{folder.name}.index.lock", timeout=self._lock_timeout)

    def _entries(self, repository: str) -> list[Descriptor]:
        index_file = self._folder(repository) / "index.json"
        try:
            raw = index_file.read_bytes()
        except FileNotFoundError:
            return []
        document = parse_manifest(raw, INDEX, registry=self.location, reference=f"{repository}/index.json")
        if not isinstance(document, Index):
            raise OciRejected("index.json is not an image index", registry=self.location, reference=repository)
        return list(document.manifests)

    @contextmanager
    def _index(self, repository: str) -> Iterator[list[Descriptor]]:
        """``index.json``'s entries, locked; written back (atomically) when the block ends cleanly."""
        folder = self._layout(repository)
        with self._lock(folder):
            entries = self._entries(repository)
            yield entries
            write_atomically(folder / "index.json", canonical_json(Index(manifests=entries)))

    def _read_index_blob(self, repository: str, descriptor: Descriptor) -> Index:
        document = self.fetch_manifest(repository, descriptor.digest).document
        if not isinstance(document, Index):
            raise OciRejected(
                f"the referrers fallback tag of {descriptor.digest} holds a manifest, not an index",
                registry=self.location,
                reference=repository,
            )
        return document

    def _store_manifest(self, repository: str, manifest: Manifest | Index | FetchedManifest) -> Descriptor:
        """Write a manifest blob once every blob it names is present."""
        self._layout(repository)
        document, media_type, raw = manifest_bytes(manifest)
        named = [document.config, *document.layers] if isinstance(document, Manifest) else document.manifests
        missing = [d.digest for d in named if not self.blob_exists(repository, d.digest)]
        if missing:
            raise OciRejected(
                f"the manifest names blobs the layout does not have: {', '.join(missing)}",
                registry=self.location,
                reference=repository,
            )
        descriptor = Descriptor.of(raw, media_type)
        if not self.blob_exists(repository, descriptor.digest):
            write_atomically(self._blob(repository, descriptor.digest), raw)
        return descriptor

    def _mount(self, repository: str, source: str, digest: str) -> bool:
        """Hard-link (or copy) a blob another repository of this root holds; False when it has none."""
        origin = self._blob(source, digest)
        if not origin.is_file():
            return False
        target = self._blob(repository, digest)
        self._layout(repository)
        if not target.is_file():
            _link_or_copy(origin, target)
        return True


def _place(entries: list[Descriptor], descriptor: Descriptor, tags: Sequence[str]) -> None:
    """Point each tag at ``descriptor`` (moving it off whatever it named); untagged, list it once."""
    if not tags:
        if not any(e.digest == descriptor.digest and REF_NAME not in (e.annotations or {}) for e in entries):
            entries.append(descriptor)
        return
    for tag in tags:
        entries[:] = [e for e in entries if (e.annotations or {}).get(REF_NAME) != tag]
        entries.append(descriptor.model_copy(update={"annotations": {REF_NAME: tag}}))


def _link_or_copy(origin: Path, target: Path) -> None:
    temporary = target.with_name(f".{target.name}.mount")
    try:
        os.link(origin, temporary)
    except OSError:
        shutil.copyfile(origin, temporary)
    os.replace(temporary, target)
