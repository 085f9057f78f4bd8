"""Health, readiness, metrics, plugins, the body limit, request ids and the error shape."""

from __future__ import annotations

import json
import logging

import pytest

from .conftest import Api, create_run, new_sha, unique_repo


def test_liveness_and_readiness_need_no_token(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    assert api.client.get("/readyz").json() == {"status": "ok"}


def test_metrics_show_request_latency_and_runs_by_status(api: Api) -> None:
    create_run(api)
    text = api.client.get("/metrics", headers=api.headers("viewer")).text
    labels = 'method="POST",route="/v1/runs",status="201"'
    assert f"forge_http_request_duration_seconds_count{{{labels}}}" in text
    assert 'forge_pipeline_runs{status="pending"}' in text
    assert "forge_outbox_pending" in text


def test_metrics_need_a_token(api: Api) -> None:
    assert api.client.get("/metrics").status_code == 401


def test_plugins_lists_what_the_server_loaded(api: Api) -> None:
    plugins = api.client.get("/v1/plugins", headers=api.headers("viewer")).json()["plugins"]
    github = next(p for p in plugins if p["id"] == "forge_github")
    assert github["status"] == "loaded"
    assert github["registrations"]["notifier"] == ["github"]
    assert "forge_register_notifiers" in github["hooks"]


def test_a_body_over_ten_megabytes_is_413(api: Api) -> None:
    body = b'{"repository": "' + b"a" * (10 * 1024 * 1024) + b'"}'
    response = api.post("/v1/runs", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "invalid_request"


def test_a_streamed_body_over_the_limit_is_413(api: Api) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(11):
            yield b"x" * (1024 * 1024)

    response = api.post("/v1/runs", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_request_ids_are_echoed_or_made(api: Api) -> None:
    given = api.client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = api.client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert len(made.headers["x-request-id"]) == 32


def test_unknown_routes_use_the_error_shape(api: Api) -> None:
    response = api.client.get("/v1/nothing-here", headers=api.as_admin())
    assert response.status_code == 404
    assert set(response.json()["error"]) == {"code", "message", "details"}
    assert response.json()["error"]["code"] == "resource_not_found"


def test_a_wrong_method_uses_the_error_shape(api: Api) -> None:
    response = api.client.patch("/v1/runs", headers=api.as_admin())
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "invalid_request"


def test_logs_are_json_with_the_request_id(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="forge")
    body = {"repository": unique_repo(), "commit_sha": new_sha(), "triggered_by": "x"}
    api.post("/v1/runs", json=body, headers={"X-Request-ID": "trace-me-42"})
    handler = logging.getLogger("forge").handlers[0]
    records = [record for record in caplog.records if record.name.startswith("forge")]
    lines = [json.loads(handler.format(record)) for record in records]
    event = next(e for e in lines if e.get("request_id") == "trace-me-42")
    assert event["event"] == "request"
    assert event["status"] == 201
    assert event["route"] == "/v1/runs"
    assert event["level"] == "info"
    assert event["timestamp"]
    assert not any("Bearer" in json.dumps(e) for e in lines)
