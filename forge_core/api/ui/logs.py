"""A step's log, a page at a time, as stored (its secrets were masked when it was written).

Pages are cut at line ends by byte offset, so the next page, or the lines a running step adds
later, start where the last one ended."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from forge_core.adapters.storage import FsspecStore
from forge_core.services import schemas as s
from forge_core.settings import Settings

PAGE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Chunk:
    lines: list[str]
    offset: int  # where these lines start
    next_offset: int  # where the next page starts
    more: bool  # the stored log goes on past this page
    missing: bool  # no log (the step has not run, or its log is gone)
    following: bool  # the step still runs: more may come


async def read_chunk(settings: Settings, step: s.Step, offset: int) -> Chunk:
    following = step.status not in s.FINAL_STATUSES
    if step.logs_s3_key is None:
        return Chunk([], offset, offset, more=False, missing=True, following=following)
    store = FsspecStore.from_settings(settings.storage)
    return await asyncio.to_thread(_read, store, step.logs_s3_key, offset, following)


def _read(store: FsspecStore, key: str, offset: int, following: bool) -> Chunk:
    try:
        with store.open_bytes(key) as handle:
            handle.seek(offset)
            data = handle.read(PAGE_BYTES + 1)
    except FileNotFoundError:
        return Chunk([], offset, offset, more=False, missing=True, following=following)
    more = len(data) > PAGE_BYTES
    data = data[:PAGE_BYTES]
    end = data.rfind(b"\n") + 1
    if end == 0 and (more or following):
        end = len(data) if more else 0  # a page-long line is shown in pieces; a partial last line waits
    elif not more and not following:
        end = len(data)  # a finished log's last line, even without its newline
    text = data[:end].decode("utf-8", "replace")
    return Chunk(text.splitlines(), offset, offset + end, more=more, missing=False,
                 following=following)
