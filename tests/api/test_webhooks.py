"""GitHub webhooks: HMAC signatures, idempotent run creation, events that start nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from .conftest import WEBHOOK_SECRET, Api, new_sha, unique_repo


def push(repository: str, sha: str, ref: str = "refs/heads/main", **extra: Any) -> bytes:
    return json.dumps({"ref": ref, "after": sha, "repository": {"full_name": repository},
                       "pusher": {"name": "octocat"}, **extra}).encode()


def signed(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(api: Api, body: bytes, event: str = "push", signature: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"X-GitHub-Event": event, "Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return api.client.post("/v1/webhooks/github", content=body, headers=headers)


def runs_of(api: Api, repository: str) -> int:
    total: int = api.get("/v1/runs", params={"repository": repository}).json()["total"]
    return total


def test_a_push_creates_the_run_and_a_redelivery_returns_it(api: Api) -> None:
    repository, sha = unique_repo(), new_sha()
    body = push(repository, sha)
    first = deliver(api, body, signature=signed(body))
    assert first.status_code == 201, first.text
    run = first.json()
    assert (run["repository"], run["commit_sha"]) == (repository, sha)
    assert (run["branch"], run["trigger_type"]) == ("main", "push")
    assert run["triggered_by"] == "octocat"
    again = deliver(api, body, signature=signed(body))
    assert again.status_code == 200
    assert again.json()["id"] == run["id"]
    assert runs_of(api, repository) == 1


def test_a_tag_push_records_the_tag(api: Api) -> None:
    repository, sha = unique_repo(), new_sha()
    body = push(repository, sha, ref="refs/tags/v1.0.0")
    run = deliver(api, body, signature=signed(body)).json()
    assert (run["tag"], run["branch"], run["trigger_type"]) == ("v1.0.0", None, "tag")


def test_a_forged_signature_is_401_and_touches_nothing(api: Api) -> None:
    repository = unique_repo()
    body = push(repository, new_sha())
    response = deliver(api, body, signature=signed(body, secret="guess"))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert runs_of(api, repository) == 0


def test_a_signature_of_another_body_is_401(api: Api) -> None:
    repository = unique_repo()
    body = push(repository, new_sha())
    assert deliver(api, body, signature=signed(body + b" ")).status_code == 401
    assert runs_of(api, repository) == 0


def test_a_missing_signature_is_401(api: Api) -> None:
    repository = unique_repo()
    response = deliver(api, push(repository, new_sha()))
    assert response.status_code == 401
    assert "X-Hub-Signature-256" in response.json()["error"]["message"]
    assert runs_of(api, repository) == 0


def test_other_events_are_accepted_and_ignored(api: Api) -> None:
    body = json.dumps({"zen": "Design for failure."}).encode()
    response = deliver(api, body, event="ping", signature=signed(body))
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"


def test_a_deleted_branch_is_ignored(api: Api) -> None:
    repository = unique_repo()
    body = push(repository, "0" * 40, deleted=True)
    assert deliver(api, body, signature=signed(body)).status_code == 202
    assert runs_of(api, repository) == 0


def test_a_signed_push_with_a_bad_sha_is_invalid(api: Api) -> None:
    body = push(unique_repo(), "zzzz")
    response = deliver(api, body, signature=signed(body))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_a_signed_body_that_is_not_json_is_invalid(api: Api) -> None:
    body = b"\xff\xfe not json"
    assert deliver(api, body, signature=signed(body)).status_code == 400


def test_a_signed_webhook_nested_too_deeply_is_400_and_creates_nothing(api: Api) -> None:
    repository = unique_repo()
    body = push(repository, new_sha()).replace(b'"pusher"', b'"deep": ' + b"[" * 100_000 + b"]" * 100_000
                                               + b', "pusher"')
    response = deliver(api, body, signature=signed(body))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_request"
    assert "nested too deeply" in response.json()["error"]["message"]
    assert runs_of(api, repository) == 0
