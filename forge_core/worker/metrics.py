"""The worker's Prometheus metrics. ``forge_worker_consumer_pending`` is the consumer lag KEDA
scales a worker type on (the same figure its NATS JetStream scaler reads)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class WorkerMetrics:
    def __init__(self, job_type: str) -> None:
        self.registry = CollectorRegistry()
        labels = {"type": job_type}
        self.jobs = Counter(
            "forge_worker_jobs", "Jobs finished, by status", ["type", "status"], registry=self.registry
        )
        self.duration = Histogram(
            "forge_worker_job_duration_seconds", "Time spent in the job handler", ["type"], registry=self.registry
        ).labels(**labels)
        self.in_flight = Gauge(
            "forge_worker_jobs_in_flight", "Jobs being handled", ["type"], registry=self.registry
        ).labels(**labels)
        self.pending = Gauge(
            "forge_worker_consumer_pending", "Jobs waiting in the consumer (lag)", ["type"], registry=self.registry
        ).labels(**labels)
        self.ack_pending = Gauge(
            "forge_worker_consumer_ack_pending", "Jobs delivered and not yet acked", ["type"], registry=self.registry
        ).labels(**labels)
        self.dead_letters = Counter(
            "forge_worker_dead_letters", "Messages moved to the dead-letter subject", ["type", "reason"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "forge_worker_duplicates", "Redeliveries answered from the stored result", ["type"], registry=self.registry
        ).labels(**labels)
        self.job_type = job_type
        self._server: Any = None

    def serve(self, host: str, port: int) -> int:
        """Expose ``/metrics`` on ``host:port`` (port 0: any free one); returns the port."""
        self._server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(self._server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
