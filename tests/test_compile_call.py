"""Compiled.__call__'s own work around a compiled version: the arguments flattened (with
the flattening's kinds kept per type) and the result rebuilt by a generated function
(arrayq._compile.rebuilder) from the second call of a traced version on. The result must
be what the function returns (checked against the function run eagerly, and against
unflatten, the walk it replaces), for every kind of container; a version that runs eagerly
rebuilds from each call's own structure."""

from __future__ import annotations

import dataclasses
from collections import namedtuple
from typing import Any

import numpy as np
import pytest

import arrayq as aq
from arrayq._compile import flatten, rebuilder, unflatten

Pair = namedtuple("Pair", "a b")


class Row(tuple):  # a tuple subclass without _fields: a sequence
    pass


class Items(list):
    pass


@dataclasses.dataclass
class Holder:
    x: Any
    n: int
    tag: str = "t"


@dataclasses.dataclass
class KwOnly:
    x: Any
    scale: float = dataclasses.field(default=1.0, kw_only=True)


@dataclasses.dataclass
class Empty:
    pass


def _result(x: Any) -> Any:
    return {
        "pair": Pair(x, aq.add(x, 1)),
        "row": Row((x, 2.5, None)),
        "items": Items([aq.multiply(x, 2), "s"]),
        "holder": Holder(aq.negative(x), 3),
        "kw": KwOnly(x, scale=0.5),
        "empty": Empty(),
        "plain": [(x,), [], (), {}],
        True: 1,
    }


def _same(got: Any, want: Any) -> None:
    g_leaves, g_structure = flatten(got, static_must_hash=False)
    w_leaves, w_structure = flatten(want, static_must_hash=False)
    assert g_structure == w_structure  # the same containers, types and static values
    assert type(got) is type(want)
    for g, w in zip(g_leaves, w_leaves):
        np.testing.assert_array_equal(g, w)


def test_rebuilder_matches_unflatten_for_every_container():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    leaves, structure = flatten(_result(x), static_must_hash=False)
    rebuilt = rebuilder(structure)(leaves)
    _same(rebuilt, unflatten(structure, leaves))
    assert type(rebuilt["row"]) is Row and type(rebuilt["items"]) is Items and rebuilt["kw"].scale == 0.5
    assert rebuilt["pair"].b is leaves[1]  # the arrays themselves, in place


def test_compiled_results_rebuilt_on_replay():
    f = aq.compile(_result)
    for i in range(4):
        x = np.full((2, 3), float(i), np.float32)
        _same(f(x), _result(x))
    assert f.cache_info().native == 1 and f.cache_info().hits == 3


def test_a_structure_too_deep_for_one_expression_is_unflattened():
    x = np.ones(2, np.float32)
    deep: Any = x
    for _ in range(60):
        deep = [deep]
    leaves, structure = flatten(deep)
    got = rebuilder(structure)(leaves)
    for _ in range(60):
        assert type(got) is list and len(got) == 1
        got = got[0]
    assert got is x


def test_an_eager_version_rebuilds_each_calls_own_result():
    """A host read makes the version run eagerly: its result's static values change."""
    f = aq.compile(lambda x: (x, float(aq.to_numpy(aq.sum(x)))))
    for i in range(3):
        x = np.full(3, float(i), np.float32)
        got = f(x)
        assert got[1] == 3.0 * i
    assert f.cache_info().native == 0


@pytest.mark.parametrize("value", [Row((1, 2)), Pair(1, 2), Items([1]), Holder(None, 1), Empty()])
def test_flatten_keeps_kinds_per_type_with_the_same_structures(value):
    once, twice = flatten(value)[1], flatten(value)[1]  # (the second from the kept kind)
    assert once == twice and unflatten(twice, []) == value
