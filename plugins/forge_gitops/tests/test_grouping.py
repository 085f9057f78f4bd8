"""Group commits: who lands what, and what every member of a failed batch hears."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from forge_gitops.grouping import GroupCommit


def run_together(group: GroupCommit[str], works: list[tuple[str, frozenset[str]]]) -> dict[str, object]:
    outcomes: dict[str, object] = {}
    start = threading.Barrier(len(works))

    def submit(work: str, paths: frozenset[str]) -> None:
        start.wait()
        try:
            outcomes[work] = group.submit(work, paths).batch_size
        except RuntimeError as error:
            outcomes[work] = error

    threads = [threading.Thread(target=submit, args=w) for w in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return outcomes


def test_waiting_members_land_together_up_to_the_batch_limit() -> None:
    batches: list[list[str]] = []
    group: GroupCommit[str] = GroupCommit(lambda batch: batches.append(list(batch)), max_batch=3, linger=0.2)
    outcomes = run_together(group, [(f"w{n}", frozenset({f"p{n}"})) for n in range(7)])
    assert sorted(len(b) for b in batches) == [1, 3, 3]
    assert sorted(w for b in batches for w in b) == sorted(outcomes)  # each landed exactly once
    assert sorted(outcomes.values()) == [1, 3, 3, 3, 3, 3, 3]  # type: ignore[type-var]


def test_members_writing_one_file_land_in_separate_batches() -> None:
    batches: list[list[str]] = []
    group: GroupCommit[str] = GroupCommit(lambda batch: batches.append(list(batch)), max_batch=10, linger=0.2)
    run_together(group, [("a", frozenset({"x", "y"})), ("b", frozenset({"y"})), ("c", frozenset({"z"}))])
    assert len(batches) == 2
    assert all(not ({"a", "b"} <= set(batch)) for batch in batches)


def test_every_member_of_a_failed_batch_gets_the_error() -> None:
    def land(batch: Sequence[str]) -> None:
        raise RuntimeError(f"push refused for {len(batch)}")

    group: GroupCommit[str] = GroupCommit(land, max_batch=10, linger=0.2)
    outcomes = run_together(group, [(f"w{n}", frozenset({f"p{n}"})) for n in range(4)])
    assert {str(o) for o in outcomes.values()} == {"push refused for 4"}


def test_without_batching_each_member_lands_alone() -> None:
    batches: list[list[str]] = []
    group: GroupCommit[str] = GroupCommit(lambda batch: batches.append(list(batch)), max_batch=1)
    run_together(group, [(f"w{n}", frozenset({f"p{n}"})) for n in range(5)])
    assert [len(b) for b in batches] == [1] * 5


def test_a_lone_member_lands_at_once() -> None:
    landed: list[str] = []
    group: GroupCommit[str] = GroupCommit(lambda batch: landed.extend(batch), max_batch=5)
    with pytest.raises(ZeroDivisionError):
        GroupCommit(lambda batch: [1 / 0 for _ in batch], max_batch=5).submit("x", frozenset())
    assert group.submit("y", frozenset({"p"})).batch_size == 1 and landed == ["y"]
