"""Commit statuses through GitHub's REST API (``POST /repos/{owner}/{repo}/statuses/{sha}``).

Options (``FORGE_API__NOTIFIER__OPTIONS``): ``api_url`` (default ``https://api.github.com``; a
GitHub Enterprise server's ``https://HOST/api/v3``), ``timeout`` seconds. The token
(``FORGE_API__NOTIFIER__TOKEN``) needs the ``repo:status`` scope or "Commit statuses: write".
"""

from __future__ import annotations

import httpx

from forge_core.sdk import CommitStatus, ForgeError, NotifierOptions

DEFAULT_API_URL = "https://api.github.com"
STATES = ("error", "failure", "pending", "success")


class GithubStatusError(ForgeError):
    code = "github_status_failed"


class GithubStatusNotifier:
    def send_commit_status(self, status: CommitStatus, options: NotifierOptions) -> None:
        if status.state not in STATES:
            raise GithubStatusError(
                f"state {status.state!r} is not one of {', '.join(STATES)}", where="state"
            )
        api_url = str(options.options.get("api_url") or DEFAULT_API_URL).rstrip("/")
        timeout = float(str(options.options.get("timeout") or 10))
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if options.token:
            headers["Authorization"] = f"Bearer {options.token}"
        body: dict[str, str] = {
            "state": status.state,
            "context": status.context,
            "description": status.description[:140],  # GitHub's limit
        }
        if status.target_url:
            body["target_url"] = status.target_url
        url = f"{api_url}/repos/{status.repository}/statuses/{status.commit_sha}"
        try:
            response = httpx.post(url, json=body, headers=headers, timeout=timeout)
        except httpx.HTTPError as exc:
            raise GithubStatusError(
                f"cannot reach {api_url}: {type(exc).__name__}", where=url
            ) from None
        if response.status_code != 201:
            raise GithubStatusError(
                f"GitHub answered {response.status_code} to a commit status for "
                f"{status.repository}@{status.commit_sha[:12]}: {response.text[:200]}",
                where=url,
            )
