"""GitHub webhooks: signature check and the push events that start pipeline runs."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from forge_core.domain.json_depth import DEFAULT_MAX_DEPTH, nests_deeper_than, too_deep_message
from forge_core.services import schemas as s
from forge_core.services.errors import AuthenticationFailed, InvalidRequest

SIGNATURE_HEADER = "X-Hub-Signature-256"
ZERO_SHA = "0" * 40


def verify_signature(secret: str | None, body: bytes, signature: str | None) -> None:
    """Check GitHub's HMAC-SHA256 of the raw body in constant time; raise if it does not match."""
    if not secret:
        raise AuthenticationFailed(
            "webhooks are disabled: no webhook secret is configured",
            where="FORGE_API__WEBHOOK_SECRET",
        )
    if not signature:
        raise AuthenticationFailed(f"missing {SIGNATURE_HEADER} header", where=SIGNATURE_HEADER)
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise AuthenticationFailed("webhook signature does not match", where=SIGNATURE_HEADER)


@dataclass(frozen=True)
class Ignored:
    reason: str


def run_for_event(event: str | None, body: bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> s.RunCreate | Ignored:
    """The run a (verified) webhook asks for, or why it is ignored."""
    if event != "push":
        return Ignored(f"event {event!r} is not handled")
    if nests_deeper_than(body, max_depth):  # whatever its content type said
        raise InvalidRequest(too_deep_message(max_depth, "webhook body"), where="body")
    try:
        payload: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"webhook body is not JSON: {exc}", where="body") from None
    except RecursionError:
        raise InvalidRequest("webhook body is nested too deeply to be read", where="body") from None
    if not isinstance(payload, dict):
        raise InvalidRequest("webhook body is not a JSON object", where="body")
    if payload.get("deleted") or payload.get("after") == ZERO_SHA:
        return Ignored("a deleted ref has no commit to build")
    ref = str(payload.get("ref") or "")
    branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
    tag = ref.removeprefix("refs/tags/") if ref.startswith("refs/tags/") else None
    pusher = _object(payload.get("pusher"))
    repository = _object(payload.get("repository"))
    try:
        return s.RunCreate(
            repository=repository.get("full_name"),
            commit_sha=payload.get("after"),
            branch=branch,
            tag=tag,
            triggered_by=pusher.get("name") or "github",
            trigger_type=s.TriggerType.TAG if tag else s.TriggerType.PUSH,
            clone_url=repository.get("clone_url") or None,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidRequest(
            f"push event: {'.'.join(map(str, first['loc']))}: {first['msg']}", where="body"
        ) from None


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
