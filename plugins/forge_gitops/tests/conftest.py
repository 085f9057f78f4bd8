from forge_gitops.testing import gitops_remote, gitops_remote_token

__all__ = ["gitops_remote", "gitops_remote_token"]  # the git http-backend remotes
