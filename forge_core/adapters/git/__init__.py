"""Git: reading commits (``reader``), the cache of bare mirrors workers keep (``cache``), and
checkouts of a commit for a job (``checkout``)."""

from forge_core.adapters.git.cache import GitCache
from forge_core.adapters.git.checkout import checked_out
from forge_core.adapters.git.reader import CommitReader, GitError, TreeEntry, WorkingTreeReader

__all__ = ["CommitReader", "GitCache", "GitError", "TreeEntry", "WorkingTreeReader", "checked_out"]
