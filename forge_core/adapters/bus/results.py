"""Results on the bus: always stored (duplicate deliveries are answered from the store), sent
inline when small and by reference when over the size limit."""

from __future__ import annotations

from forge_core.domain.jobs import ResultEnvelope
from forge_core.domain.models import Job, JobResult
from forge_core.ports.storage import ObjectStore, result_key


def job_result_key(job: Job) -> str:
    """Per attempt: a retried job (a new ``attempt``) runs again; a redelivered one does not."""
    return result_key(job.run_id, f"{job.id}.{job.attempt}")


def store_result(storage: ObjectStore, job: Job, result: JobResult, limit: int) -> bytes:
    """Store ``result`` and return the envelope to reply with."""
    body = result.model_dump_json().encode()
    key = job_result_key(job)
    storage.write_bytes(key, body)
    return _envelope(result, key, len(body) > limit)


def stored_reply(storage: ObjectStore, job: Job, limit: int) -> bytes | None:
    """The reply for a job that already finished, or None."""
    key = job_result_key(job)
    if not storage.exists(key):
        return None
    body = storage.read_bytes(key)
    result = JobResult.model_validate_json(body)
    return _envelope(result, key, len(body) > limit)


def _envelope(result: JobResult, key: str, by_reference: bool) -> bytes:
    if by_reference:
        envelope = ResultEnvelope(job_id=result.job_id, status=result.status, result_ref=key)
    else:
        envelope = ResultEnvelope(job_id=result.job_id, status=result.status, result=result)
    return envelope.model_dump_json().encode()


def read_reply(data: bytes, storage: ObjectStore) -> JobResult:
    """The result a reply carries, fetched from storage when it came by reference."""
    envelope = ResultEnvelope.model_validate_json(data)
    if envelope.result is not None:
        return envelope.result
    assert envelope.result_ref is not None
    return JobResult.model_validate_json(storage.read_bytes(envelope.result_ref))
