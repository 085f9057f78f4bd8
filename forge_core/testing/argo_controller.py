"""A harness playing the Argo Workflows controller for one Workflow, without containers.

It follows the entrypoint DAG's ``depends`` expressions, runs each task's container
(``command`` + ``args``) as a local process, and reports every node into the stand-in Argo
Server's status as the controller would. Covered: ``templateRef`` to WorkflowTemplates given
here (the chart's ``dispatch-<type>`` and ``close-run``), inline container templates, input
parameters' defaults, an ``onExit`` of ``steps``, ``inputs.parameters`` and raw
input artifacts, ``outputs.parameters`` from files, ``retryStrategy.limit`` (with an
``asInt(lastRetry.exitCode) == N`` expression), ``continueOn.failed``, ``failFast``, ``onExit``
with ``{{workflow.status}}``, and a stop (``spec.shutdown``: no new tasks, the exit handler runs).
Absolute paths of a template's files live in a folder per node. The container's own ``env`` is
the cluster's: processes get the harness's ``env`` instead.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from forge_core.testing.argo import ArgoServerStandIn

_DEPENDS = re.compile(r"([A-Za-z0-9-]+)\.(Succeeded|Failed|Errored|Skipped|Omitted)")
_RETRY_ON = re.compile(r"^asInt\(lastRetry\.exitCode\) == (\d+)$")
DONE = {"Succeeded", "Failed", "Error", "Omitted", "Skipped"}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Controller:
    def __init__(
        self, server: ArgoServerStandIn, templates: list[dict[str, Any]], env: dict[str, str], *,
        namespace: str = "forge", exit_code: Callable[[str, int, int], int] | None = None,
    ) -> None:
        """``templates``: the WorkflowTemplates ``templateRef`` may name; ``exit_code(task,
        attempt, code)`` may replace an attempt's exit code (a test's fault: the pod lost after
        its process ran)."""
        self.server, self.env, self.namespace = server, env, namespace
        self.library = {(t["metadata"]["name"], x["name"]): x for t in templates for x in t["spec"]["templates"]}
        self.exit_code = exit_code
        self.attempts: dict[str, int] = {}
        self.logs: dict[str, str] = {}
        """Each node's last output (stdout and stderr, the last 2000 characters), by task name."""

    def play(self, name: str, timeout: float = 300.0) -> str:
        """Run the submitted Workflow ``name`` to its end; its final phase."""
        workflow = self.server.workflow(name, self.namespace)
        assert workflow is not None, f"Workflow {name} was not submitted"
        spec = workflow["spec"]
        own = {t["name"]: t for t in spec["templates"]}
        nodes: dict[str, dict[str, Any]] = {}
        lock = threading.Lock()
        self._report(name, "Running", nodes, lock)
        (dag,) = [t["dag"] for t in spec["templates"] if t["name"] == spec["entrypoint"]]
        tasks = {t["name"]: t for t in dag["tasks"]}
        fail_fast = dag.get("failFast", True)
        running: dict[str, threading.Thread] = {}
        failed = False
        deadline = time.monotonic() + timeout
        while True:
            with lock:
                phases = {n: node["phase"] for n, node in nodes.items()}
            stopped = (self.server.workflow(name, self.namespace) or {}).get("spec", {}).get("shutdown")
            for task_name, task in tasks.items():
                if task_name in nodes:
                    continue
                decision = self._ready(task.get("depends"), phases)
                if decision is None:
                    continue
                if not decision or stopped or (failed and fail_fast):
                    with lock:
                        nodes[task_name] = self._node(name, task_name, "Omitted")
                    continue
                template = self._template(task, own)
                params = {p["name"]: p["value"] for p in task.get("arguments", {}).get("parameters", [])}
                with lock:
                    nodes[task_name] = self._node(name, task_name, "Running")
                thread = threading.Thread(target=self._run_node, args=(name, task_name, template, params, nodes,
                                                                        lock, {}), daemon=True)
                running[task_name] = thread
                thread.start()
            with lock:
                for task_name, node in nodes.items():
                    continue_on = tasks[task_name].get("continueOn", {}).get("failed", False)
                    if node["phase"] in {"Failed", "Error"} and not continue_on:
                        failed = True
                finished = len(nodes) == len(tasks) and all(n["phase"] in DONE for n in nodes.values())
            self._report(name, "Running", nodes, lock)
            if finished:
                break
            assert time.monotonic() < deadline, f"Workflow {name} did not finish in {timeout}s"
            time.sleep(0.05)
        status = "Failed" if failed or stopped else "Succeeded"
        exit_name = spec.get("onExit")
        shutdown = (self.server.workflow(name, self.namespace) or {}).get("spec", {}).get("shutdown")
        if exit_name and shutdown != "Terminate":
            self._exit_handler(name, own[exit_name], own, nodes, lock, {"workflow.status": status})
        self._report(name, status, nodes, lock, message="child failed" if status == "Failed" else "")
        return status

    def _exit_handler(
        self, workflow: str, template: dict[str, Any], own: dict[str, dict[str, Any]],
        nodes: dict[str, dict[str, Any]], lock: threading.Lock, globals_: dict[str, str],
    ) -> None:
        """``onExit``: a container template, or a ``steps`` template (each step in order, its
        arguments filled with the Workflow's globals such as ``{{workflow.status}}``)."""
        if "steps" not in template:
            self._run_node(workflow, f"{workflow}.onExit", template, {}, nodes, lock, globals_)
            return
        for parallel in template["steps"]:
            for step in parallel:
                params = {p["name"]: re.sub(r"\{\{\s*([\w.-]+)\s*\}\}", lambda m: globals_.get(m.group(1), m.group(0)),
                                            str(p["value"]))
                          for p in step.get("arguments", {}).get("parameters", [])}
                self._run_node(workflow, f"{workflow}.onExit.{step['name']}", self._template(step, own), params, nodes,
                               lock, globals_)

    def _ready(self, depends: str | None, phases: dict[str, str]) -> bool | None:
        """None while a task it names has not finished, else whether the expression holds."""
        if not depends:
            return True
        names = {m.group(1) for m in _DEPENDS.finditer(depends)}
        if any(phases.get(n) not in DONE for n in names):
            return None
        alias = {"Errored": "Error"}
        expression = _DEPENDS.sub(lambda m: str(phases[m.group(1)] == alias.get(m.group(2), m.group(2))), depends)
        return bool(eval(expression.replace("&&", " and ").replace("||", " or "), {"__builtins__": {}}))

    def _template(self, task: dict[str, Any], own: dict[str, dict[str, Any]]) -> dict[str, Any]:
        if "templateRef" in task:
            ref = task["templateRef"]
            found: dict[str, Any] | None = self.library.get((ref["name"], ref["template"]))
            assert found is not None, f"no WorkflowTemplate {ref['name']} with template {ref['template']}"
            return found
        return own[str(task["template"])]

    def _run_node(
        self, workflow: str, task_name: str, template: dict[str, Any], params: dict[str, str],
        nodes: dict[str, dict[str, Any]], lock: threading.Lock, globals_: dict[str, str],
    ) -> None:
        inputs = template.get("inputs", {}).get("parameters", [])
        defaults = {p["name"]: str(p["value"]) for p in inputs if "value" in p}
        values = {**{f"inputs.parameters.{k}": v for k, v in {**defaults, **params}.items()}, **globals_}

        def fill(text: str) -> str:
            return re.sub(r"\{\{\s*([\w.-]+)\s*\}\}", lambda m: values.get(m.group(1), m.group(0)), text)

        strategy = template.get("retryStrategy") or {}
        limit = int(strategy.get("limit", 0))
        retry_on = _RETRY_ON.match(strategy.get("expression", ""))
        attempt, code, output = 0, 0, ""
        results: list[dict[str, str]] = []
        with tempfile.TemporaryDirectory(prefix="argo-node-") as folder:
            def local(path: str) -> str:
                return str(Path(folder) / path.lstrip("/"))

            while True:
                self.attempts[task_name] = attempt + 1
                files = {}
                for artifact in template.get("inputs", {}).get("artifacts", []):
                    Path(local(artifact["path"])).parent.mkdir(parents=True, exist_ok=True)
                    Path(local(artifact["path"])).write_text(fill(artifact["raw"]["data"]))
                    files[artifact["path"]] = local(artifact["path"])
                outputs = {p["name"]: p["valueFrom"]["path"] for p in template.get("outputs", {}).get("parameters", [])}
                files.update({path: local(path) for path in outputs.values()})
                container = template["container"]
                argv = [fill(a) for a in container["command"] + container.get("args", [])]
                argv = [files.get(a, a) for a in argv]
                argv[0] = self.env.get("FORGE_BIN", argv[0]) if argv[0] == "forge" else argv[0]
                done = subprocess.run(argv, env={**os.environ, **self.env}, capture_output=True, text=True,
                                      timeout=600)
                code, output = done.returncode, (done.stdout + done.stderr)[-2000:]
                if self.exit_code:
                    code = self.exit_code(task_name, attempt, code)
                results = [{"name": key, "value": Path(local(path)).read_text()}
                           for key, path in outputs.items() if Path(local(path)).is_file()]
                retry = code != 0 and attempt < limit and (retry_on is None or code == int(retry_on.group(1)))
                if not retry:
                    break
                attempt += 1
        with lock:
            node = self._node(workflow, task_name, "Succeeded" if code == 0 else "Failed")
            node["message"] = "" if code == 0 else f"exit code {code}"
            node["outputs"] = {"exitCode": str(code), "parameters": results}
            node["log"] = output
            nodes[task_name] = node
            self.logs[task_name] = output

    @staticmethod
    def _node(workflow: str, task_name: str, phase: str) -> dict[str, Any]:
        return {"id": f"{workflow}-{abs(hash(task_name)) % 10**10}", "name": f"{workflow}.{task_name}",
                "displayName": task_name, "type": "Pod", "phase": phase,
                "finishedAt": _now() if phase in DONE else None}

    def _report(self, name: str, phase: str, nodes: dict[str, dict[str, Any]], lock: threading.Lock,
                message: str = "") -> None:
        with lock:
            seen = {n["id"]: {k: v for k, v in n.items() if k != "log"} for n in copy.deepcopy(nodes).values()}
            status = {"phase": phase, "message": message, "nodes": seen}
        if self.server.workflow(name, self.namespace) is not None:
            self.server.set_status(name, status, self.namespace)
