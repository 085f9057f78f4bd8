"""A stand-in Argo Server for tests: the Workflow endpoints of Argo's REST API (swagger.json),
in memory, on loopback. No controller runs: a test (or the harness) sets each Workflow's status.

Implemented: ``POST /api/v1/workflows/{namespace}`` (create; 409 for a taken name; 400 with the
schema's complaint when ``validate`` finds one), ``GET …/{name}``, ``PUT …/{name}/stop`` (sets
``spec.shutdown: Stop``), ``PUT …/{name}/terminate`` (``Terminate``), ``DELETE …/{name}``. Every
request needs ``Authorization: Bearer <token>`` (401 otherwise, as the server's client auth mode
answers). ``calls`` lists ``(method, path)`` of every request.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema

from forge_core.testing.http import JsonHandler

_PATH = re.compile(r"^/api/v1/workflows/(?P<ns>[^/]+)(?:/(?P<name>[^/]+)(?:/(?P<action>stop|terminate))?)?$")

Validate = Callable[[dict[str, Any]], list[str]]


def _closed(schema: Any) -> Any:
    """Objects listing properties refuse others, so a misspelt field is an error, not ignored."""
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: _closed(value) for key, value in schema.items()}
    if "properties" in result and "additionalProperties" not in result:
        result["additionalProperties"] = False
    return result


def workflow_validator(schema_json: Path) -> Validate:
    """Errors of a Workflow against Argo's JSON Schema (``api/jsonschema/schema.json``), closed."""
    full = json.loads(schema_json.read_text())
    schema = {"$ref": "#/definitions/io.argoproj.workflow.v1alpha1.Workflow",
              "definitions": _closed(full["definitions"])}
    validator = jsonschema.Draft202012Validator(schema)

    def errors(workflow: dict[str, Any]) -> list[str]:
        return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(workflow)]

    return errors


class ArgoServerStandIn:
    def __init__(self, token: str, validate: Validate | None = None) -> None:
        self.token, self.validate = token, validate
        self.workflows: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def workflow(self, name: str, namespace: str = "forge") -> dict[str, Any] | None:
        with self.lock:
            found = self.workflows.get((namespace, name))
            return copy.deepcopy(found)

    def set_status(self, name: str, status: dict[str, Any], namespace: str = "forge") -> None:
        """Play the controller: replace the Workflow's status (``phase``, ``nodes``, ``message``)."""
        with self.changed:
            self.workflows[(namespace, name)]["status"] = copy.deepcopy(status)
            self.changed.notify_all()

    def wait_for(self, test: Callable[[], bool], timeout: float = 10.0) -> None:
        with self.changed:
            if not self.changed.wait_for(test, timeout):
                raise AssertionError("the stand-in never saw the expected change")

    def _handler(self) -> type[JsonHandler]:
        stand_in = self

        class Handler(JsonHandler):
            def _route(self, method: str) -> None:
                with stand_in.changed:
                    stand_in.calls.append((method, self.path))
                    stand_in.changed.notify_all()
                if self.headers.get("Authorization") != f"Bearer {stand_in.token}":
                    self._reply(401, {"code": 16, "message": "token not valid"})
                    return
                match = _PATH.match(self.path)
                if match is None:
                    self._reply(404, {"code": 5, "message": f"no route {self.path}"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else {}
                status, answer = stand_in._answer(method, match["ns"], match["name"], match["action"], body)
                self._reply(status, answer)

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_PUT(self) -> None:
                self._route("PUT")

            def do_DELETE(self) -> None:
                self._route("DELETE")

        return Handler

    def _answer(
        self, method: str, namespace: str, name: str | None, action: str | None, body: dict[str, Any]
    ) -> tuple[int, Any]:
        with self.changed:
            if name is None and method == "POST":
                workflow = body.get("workflow")
                if not isinstance(workflow, dict):
                    return 400, {"code": 3, "message": "workflow is required"}
                problems = self.validate(workflow) if self.validate else []
                if problems:
                    return 400, {"code": 3, "message": "; ".join(problems[:5])}
                wf_name = workflow.get("metadata", {}).get("name")
                if not wf_name:
                    return 400, {"code": 3, "message": "metadata.name is required (generateName not served here)"}
                if (namespace, wf_name) in self.workflows:
                    return 409, {"code": 6, "message": f'workflows.argoproj.io "{wf_name}" already exists'}
                stored = copy.deepcopy(workflow)
                stored["metadata"]["namespace"] = namespace
                stored["status"] = {"phase": "Pending"}
                self.workflows[(namespace, wf_name)] = stored
                self.changed.notify_all()
                return 200, stored
            if name is None:
                return 405, {"code": 12, "message": f"{method} not served"}
            found = self.workflows.get((namespace, name))
            if found is None:
                return 404, {"code": 5, "message": f'workflows.argoproj.io "{name}" not found'}
            if method == "GET" and action is None:
                return 200, found
            if method == "DELETE" and action is None:
                del self.workflows[(namespace, name)]
                self.changed.notify_all()
                return 200, {}
            if method == "PUT" and action in {"stop", "terminate"}:
                found["spec"]["shutdown"] = "Stop" if action == "stop" else "Terminate"
                self.changed.notify_all()
                return 200, found
            return 405, {"code": 12, "message": f"{method} {action} not served"}

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def argo_server(token: str, validate: Validate | None = None) -> Iterator[ArgoServerStandIn]:
    server = ArgoServerStandIn(token, validate)
    server.start()
    try:
        yield server
    finally:
        server.stop()
