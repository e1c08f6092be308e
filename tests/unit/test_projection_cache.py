"""The row cache a rebuild keeps between batches, and a batch that runs on it alone."""

from __future__ import annotations

from typing import Any

from projections.batch import Batch, RowCache, Seen, _resolved
from projections.schema import BUILD, Table, columns

NODES = Table(
    name="nodes",
    columns=columns("node text, group_id text"),
    key=("node",),
    load_by="node",
    cache_index="group_id",
)
PAIRS = Table(
    name="pairs",
    columns=columns("stream_id text, method text, n int"),
    key=("stream_id", "method"),
    load_by="stream_id",
)


class NoDatabase:
    """A batch on a complete cache never needs the table: any query is a failure."""

    def select_in(self, *args: Any) -> list[Any]:
        raise AssertionError("the cache knew every row; no query expected")


def test_keep_take_and_evict() -> None:
    cache = RowCache(limit=2)
    cache.starts_empty(["pairs"])
    cache.keep("pairs", {"s1": [{"stream_id": "s1"}], "s2": [{"stream_id": "s2"}]}, None)
    assert cache.take("pairs", "s1") == [{"stream_id": "s1"}]
    cache.keep("pairs", {"s3": []}, None)  # s2 was least recently used
    assert cache.take("pairs", "s2") is None and cache.take("pairs", "s1") is not None
    # Evicted, but known to have rows: not "surely absent", so it is read from the table.
    assert not cache.surely_absent("pairs", "s2") and cache.surely_absent("pairs", "s9")


def test_a_tables_own_cache_size_overrides_the_default() -> None:
    cache = RowCache(limit=1)
    many = {f"s{n}": [{"stream_id": f"s{n}"}] for n in range(5)}
    cache.keep("pairs", many, None, limit=3)
    assert [cache.take("pairs", f"s{n}") is not None for n in range(5)] == [
        False,
        False,
        True,
        True,
        True,
    ]
    cache.keep("nodes", {"a": [], "b": []}, None)  # no limit of its own: the cache's
    assert cache.take("nodes", "a") is None and cache.take("nodes", "b") == []


def test_a_ceiling_caps_every_table_whatever_its_own_size() -> None:
    cache = RowCache(ceiling=2)
    many = {f"s{n}": [{"stream_id": f"s{n}"}] for n in range(5)}
    cache.keep("pairs", many, None, limit=4)
    assert [cache.take("pairs", f"s{n}") is not None for n in range(5)] == [
        False,
        False,
        False,
        True,
        True,
    ]


def test_seen_has_no_false_negatives() -> None:
    seen = Seen(bits_log2=12)
    for n in range(300):
        seen.add(f"v{n}")
    assert all(f"v{n}" in seen for n in range(300))
    assert sum(f"w{n}" in seen for n in range(1000)) < 200  # few false positives


def test_relabel_follows_the_index() -> None:
    cache = RowCache()
    rows = {n: {"node": n, "group_id": g} for n, g in [("a", "g1"), ("b", "g1"), ("c", "g2")]}
    cache.keep("nodes", {n: [r] for n, r in rows.items()}, "group_id")
    cache.relabel("nodes", "g1", "g2")
    assert {r["group_id"] for r in rows.values()} == {"g2"}
    cache.relabel("nodes", "g2", "g3")  # the moved rows move again
    assert {r["group_id"] for r in rows.values()} == {"g3"}
    assert cache.index["nodes"] == {"g3": {"a", "b", "c"}}


def test_a_batch_on_a_complete_cache_reads_nothing() -> None:
    cache = RowCache()
    cache.starts_empty(["pairs"])
    first = Batch(NoDatabase(), None, [PAIRS], BUILD, cache)  # type: ignore[arg-type]
    first.prefetch("pairs", ["s1"])
    assert first.get("pairs", ("s1", "card")) is None
    first.put("pairs", {"stream_id": "s1", "method": "card", "n": 1})
    first.buffers["pairs"].dirty.clear()  # as if flushed
    first._keep()
    second = Batch(NoDatabase(), None, [PAIRS], BUILD, cache)  # type: ignore[arg-type]
    row = second.edit("pairs", ("s1", "card"))
    assert row is not None and row["n"] == 1
    assert second.buffers["pairs"].split_dirty()[0] == [row]  # stored: an update
    assert second.get("pairs", ("s2", "card")) is None  # never seen: absent, no query


def test_relabel_chains_resolve_to_the_final_group() -> None:
    assert _resolved({"a": "b", "b": "c", "x": "y"}) == {"a": "c", "b": "c", "x": "y"}
