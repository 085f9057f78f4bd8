"""The kept clone's git objects, read and written in process (dulwich): the tip's pointer files,
and a commit on that tip writing new ones. An attempt then starts no git process but for the
network (fetch, push), which is what a deployment's latency is made of when writers race."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def read_tip(clone: Path, ref: str, paths: Sequence[str]) -> tuple[str, dict[str, str]] | None:
    """The commit ``ref`` names in ``clone`` and the text of each of ``paths`` its tree holds
    (``None``: the clone has no such ref yet)."""
    from dulwich.object_store import tree_lookup_path
    from dulwich.repo import Repo

    with Repo(str(clone)) as repo:
        try:
            tip = repo.refs[ref.encode()]
        except KeyError:
            return None
        tree = repo[tip].tree  # type: ignore[attr-defined]
        present: dict[str, str] = {}
        for path in paths:
            try:
                _mode, sha = tree_lookup_path(repo.__getitem__, tree, path.encode())
            except KeyError:  # no such file (or a folder of that name on the way)
                continue
            blob = repo[sha]
            if blob.type_name == b"blob":
                present[path] = blob.as_raw_string().decode(errors="replace")
        return tip.decode(), present


def write_commit(clone: Path, parent: str, files: Mapping[str, bytes], message: str, identity: str) -> str:
    """A commit on ``parent`` writing ``files`` (path → content), stored in ``clone`` as one pack
    (one file to write and sync, as git's own fast-import would); its id. ``identity`` is author
    and committer, ``Name <email>``, dated now (UTC)."""
    from dulwich.object_store import MemoryObjectStore, OverlayObjectStore, commit_tree_changes
    from dulwich.objects import Blob, Commit
    from dulwich.repo import Repo

    with Repo(str(clone)) as repo:
        new = MemoryObjectStore()  # what this commit adds; read-through to the clone's objects
        store = OverlayObjectStore([new, repo.object_store], add_store=new)
        changes = []
        for path, content in files.items():
            blob = Blob.from_string(content)
            store.add_object(blob)
            changes.append((path.encode(), 0o100644, blob.id))
        parent_id = parent.encode()
        commit = Commit()
        commit.tree = commit_tree_changes(store, repo[parent_id].tree, changes)  # type: ignore[attr-defined]
        commit.parents = [parent_id]
        commit.author = commit.committer = identity.encode()
        commit.author_time = commit.commit_time = int(time.time())
        commit.author_timezone = commit.commit_timezone = 0
        commit.message = message.encode()
        store.add_object(commit)
        repo.object_store.add_objects([(new[object_id], None) for object_id in list(new)])
        return commit.id.decode()
