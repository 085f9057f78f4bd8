"""Replies to a job's dispatcher: sent to the envelope's ``reply_to``, and told apart from a reply
that cannot arrive.

A reply subject is the dispatcher's private inbox. One that is not a NATS subject (spaces, empty
tokens, wildcards) would corrupt the protocol line or be refused by the server; one with no
subscriber (the dispatcher timed out and left, or never listened) drops the reply silently. Both
are found out here and named, so the worker can dead-letter the job with the reason instead of
retrying a reply that can never be delivered.
"""

from __future__ import annotations

import re

from nats.aio.client import Client

NO_RESPONDERS = "503"
"""The status the server answers a message with a reply subject that no one subscribes to."""

MAX_SUBJECT = 512
_TOKEN = re.compile(r"^[^\s.*>]+$")


def reply_subject_problem(subject: str) -> str | None:
    """Why ``subject`` cannot be replied to, or None when it is a subject one can publish to."""
    if not subject:
        return "reply_to is empty"
    shown = subject if len(subject) <= 80 else subject[:77] + "..."
    if len(subject) > MAX_SUBJECT:
        return f"reply_to {shown!r} is over {MAX_SUBJECT} characters"
    if not all(_TOKEN.match(token) for token in subject.split(".")):
        return (
            f"reply_to {shown!r} is not a NATS subject one can publish to (dot-separated tokens "
            "without spaces, empty tokens or the wildcards '*' and '>')"
        )
    return None


async def send_reply(client: Client, subject: str, data: bytes) -> str | None:
    """Publish ``data`` to ``subject``; returns why it cannot be delivered, or None once the
    server has taken it for a subscriber.

    The reply is published with a private inbox as its own reply subject: when no one subscribes
    to ``subject``, the server answers that inbox with a no-responders status before it answers
    the flush that follows (one round trip, in order on this connection)."""
    if problem := reply_subject_problem(subject):
        return problem
    inbox = await client.subscribe(client.new_inbox())
    try:
        await client.publish(subject, data, reply=inbox.subject)
        await client.flush()
        while inbox.pending_msgs:
            answer = await inbox.next_msg(timeout=1.0)  # already here: pending
            if answer.headers and answer.headers.get("Status") == NO_RESPONDERS:
                return f"no one listens on reply_to {subject!r}: its dispatcher gave up waiting or is gone"
    finally:
        await inbox.unsubscribe()
    return None
