"""JSON bodies nested deeper than ``api.max_json_depth`` are a 400 on every operation that takes
one, before anything parses them (a parser recurses per level: deep enough, it was a 500)."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI

from forge_core.domain.json_depth import DEFAULT_MAX_DEPTH, nests_deeper_than

from .conftest import Api, new_sha, unique_repo
from .test_scope import operations
from .test_webhooks import deliver, push, runs_of, signed

LIMIT = DEFAULT_MAX_DEPTH


def nested(depth: int) -> bytes:
    """An object whose field ``x`` holds arrays ``depth`` levels deep in all (the object counts)."""
    return b'{"x": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


def refused_as_too_deep(answer: object) -> bool:
    status = getattr(answer, "status_code", None)
    body = answer.json() if status == 400 else {}  # type: ignore[attr-defined]
    return status == 400 and "nested too deeply" in body.get("error", {}).get("message", "")


@pytest.mark.parametrize("depth", [LIMIT + 1, 100_000])
def test_every_operation_with_a_json_body_refuses_one_nested_too_deeply(api: Api, depth: int) -> None:
    app = api.client.app
    assert isinstance(app, FastAPI)
    with_body = [op for op in operations(app) if "requestBody" in op.spec]
    assert len(with_body) >= 15  # the schema was read
    body = nested(depth)
    answered = {}
    for op in with_body:
        url = op.path.replace("{", "").replace("}", "")  # any path: the body is refused first
        url = url.replace("run_id", new_sha()[:8]).replace(":path", "")
        answer = api.client.request(op.method.upper(), url, content=body, headers={
            **api.as_admin(), "Content-Type": "application/json"})
        answered[str(op)] = answer
    wrong = {op: f"{a.status_code} {a.text[:200]}" for op, a in answered.items() if not refused_as_too_deep(a)}
    assert not wrong, wrong
    error = next(iter(answered.values())).json()["error"]
    assert error["code"] == "invalid_request"
    assert error["details"] == {"where": "body", "limit_depth": LIMIT}
    assert "FORGE_API__MAX_JSON_DEPTH" in error["message"]


def test_a_body_at_the_limit_is_read(api: Api) -> None:
    """64 levels are allowed: the body reaches validation (which says what is wrong with it)."""
    body = json.dumps({"repository": unique_repo(), "commit_sha": new_sha(), "triggered_by": "ci",
                       "trigger_type": "push", "branch": json.loads(nested(LIMIT - 1))}).encode()
    answer = api.client.post("/v1/runs", content=body, headers={**api.as_admin(), "Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert "body.branch" in answer.json()["error"]["message"]  # refused by validation, not by depth


def test_a_body_that_does_not_say_its_type_is_measured_too(api: Api) -> None:
    answer = api.client.post("/v1/runs", content=nested(LIMIT + 1), headers=api.as_admin())
    assert refused_as_too_deep(answer), answer.text


def test_brackets_inside_strings_do_not_nest(api: Api) -> None:
    run = {"repository": unique_repo(), "commit_sha": new_sha(), "triggered_by": "[" * 200 + '"{' * 20,
           "branch": "main", "trigger_type": "push"}
    answer = api.post("/v1/runs", json=run)
    assert answer.status_code == 201, answer.text


@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
def test_a_signed_webhook_nested_past_the_limit_is_400_and_creates_nothing(api: Api, content_type: str) -> None:
    """Under the parser's recursion limit, so it parsed and started a run before the limit."""
    repository = unique_repo()
    body = push(repository, new_sha(), deep=json.loads(nested(LIMIT + 1)))
    answer = api.client.post("/v1/webhooks/github", content=body, headers={
        "X-GitHub-Event": "push", "X-Hub-Signature-256": signed(body), "Content-Type": content_type})
    assert refused_as_too_deep(answer), answer.text
    assert runs_of(api, repository) == 0
    shallow = push(repository, new_sha(), deep=json.loads(nested(8)))
    assert deliver(api, shallow, signature=signed(shallow)).status_code == 201


def test_the_depth_is_measured_outside_strings_and_escapes() -> None:
    assert not nests_deeper_than(b"[[[]]]", 3) and nests_deeper_than(b"[[[[]]]]", 3)
    assert not nests_deeper_than(b'{"a": "[[[[[[", "b": [1, {"c": "]]]}"}]}', 3)
    assert not nests_deeper_than(b'["\\"[[[[[[["]', 1)
    assert nests_deeper_than(b"[" * 5, 4)  # never closed: still that deep
