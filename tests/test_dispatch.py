"""Which backend a call runs on: from its arrays, or the default backend's precedence,
isolated per thread and per asyncio task; mixing backends; moving between them."""

import asyncio
import dataclasses
import threading

import numpy as np
import pytest

import arrayq
from arrayq import _registry
from tests._fake_backends import make_backend_class


@pytest.fixture
def two_backends():
    """Backends "alpha" and "beta", neither giving way; cleaned up afterwards."""
    alpha, beta = make_backend_class("Alpha")(), make_backend_class("Beta")()
    arrayq.register_backend("alpha", alpha)
    arrayq.register_backend("beta", beta)
    yield alpha, beta
    arrayq.unregister_backend("alpha")
    arrayq.unregister_backend("beta")
    arrayq.set_default_backend(None)


def test_backend_comes_from_the_array(two_backends):
    alpha, _ = two_backends
    a = alpha.from_numpy(np.arange(3.0))
    assert arrayq.backend_of(a) is alpha
    assert arrayq.backend_of(np.arange(3.0)) is arrayq.get_backend("numpy")
    assert arrayq.backend_of(1.5) is None
    out = arrayq.add(a, 2.0)  # a Python scalar mixes with anything
    assert arrayq.backend_of(out) is alpha and out.tolist() == [2.0, 3.0, 4.0]


def test_unknown_object_is_a_clear_type_error():
    with pytest.raises(TypeError, match="arrayq.asarray"):
        arrayq.add([1, 2], [3, 4])


def test_two_backends_raise_mismatch_naming_both_and_the_fix(two_backends):
    alpha, beta = two_backends
    with pytest.raises(arrayq.BackendMismatchError, match=r"'alpha' and 'beta'.*arrayq.to_backend"):
        arrayq.add(alpha.from_numpy(np.ones(2)), beta.from_numpy(np.ones(2)))


def test_numpy_gives_way_to_the_other_backend(two_backends):
    alpha, _ = two_backends
    out = arrayq.multiply(np.array([1.0, 2.0]), alpha.from_numpy(np.array([3.0, 4.0])))
    assert arrayq.backend_of(out) is alpha and out.tolist() == [3.0, 8.0]
    op, t1, t2 = alpha.calls[-1]
    assert op == "multiply" and t1 is alpha.array_cls and t2 is alpha.array_cls  # moved, not mixed


@pytest.fixture
def recording():
    """A backend "gamma" (not giving way) that records the argument types its concat and
    where receive, as its binary does for binary ops."""
    base = make_backend_class("Gamma")

    class Recording(base):
        def concat(self, arrays, axis):
            self.calls.append(("concat", *map(type, arrays)))
            return base.concat(self, arrays, axis)

        def where(self, condition, x1, x2):
            self.calls.append(("where", type(condition), type(x1), type(x2)))
            return base.where(self, condition, x1, x2)

    gamma = Recording()
    arrayq.register_backend("gamma", gamma)
    yield gamma
    arrayq.unregister_backend("gamma")


def test_numpy_gives_way_in_any_argument_position(recording):
    """NumPy arrays move to the other backend wherever they stand among the arguments: after
    the other backend's array in a binary op, in the middle or at the end of concat's list,
    as where's condition or as one of its values. Each op receives only the other backend's
    arrays, in the caller's order."""
    gamma = recording
    g = gamma.array_cls

    def on_gamma(values):
        return gamma.from_numpy(np.array(values, np.float64))

    def ran_on_gamma(out, expected, call):
        assert arrayq.backend_of(out) is gamma
        assert out.tolist() == expected
        assert gamma.calls[-1] == call  # moved, not mixed
        assert all(t is g for t in call[1:])

    # binary: NumPy second (and a non-commutative op, so the order is checked too)
    ran_on_gamma(arrayq.subtract(on_gamma([3.0, 4.0]), np.array([1.0, 5.0])), [2.0, -1.0], ("subtract", g, g))
    ran_on_gamma(arrayq.subtract(np.array([1.0, 5.0]), on_gamma([3.0, 4.0])), [-2.0, 1.0], ("subtract", g, g))
    # concat: the NumPy array first, in the middle, last; two NumPy arrays around one of gamma's
    parts = [[1.0], [2.0, 3.0], [4.0]]
    for numpy_at in ({0}, {1}, {2}, {0, 2}):
        arrays = [np.array(p) if i in numpy_at else on_gamma(p) for i, p in enumerate(parts)]
        ran_on_gamma(arrayq.concat(arrays), [1.0, 2.0, 3.0, 4.0], ("concat", g, g, g))
    # where: NumPy as the condition, as x1, as x2, and as both values
    cond, x1, x2 = [True, False, True], [1.0, 2.0, 3.0], [-1.0, -2.0, -3.0]
    expected = [1.0, -2.0, 3.0]
    for numpy_at in ({0}, {1}, {2}, {1, 2}):
        args = [np.array(a) if i in numpy_at else gamma.from_numpy(np.array(a)) for i, a in enumerate((cond, x1, x2))]
        ran_on_gamma(arrayq.where(*args), expected, ("where", g, g, g))


def test_default_backend_precedence(two_backends, monkeypatch):
    alpha, beta = two_backends
    monkeypatch.delenv("ARRAYQ_BACKEND", raising=False)
    assert arrayq.current_backend().name == "numpy"  # last resort
    monkeypatch.setenv("ARRAYQ_BACKEND", "beta")
    assert arrayq.current_backend() is beta  # env var beats NumPy
    arrayq.set_default_backend("alpha")
    assert arrayq.current_backend() is alpha  # process default beats env var
    with arrayq.default_backend("beta"):
        assert arrayq.current_backend() is beta  # context beats process default
        assert arrayq.backend_of(arrayq.zeros((2,))) is beta  # creation follows it
        with arrayq.default_backend("numpy"):
            assert type(arrayq.ones(3)) is np.ndarray
        assert arrayq.current_backend() is beta
    assert arrayq.current_backend() is alpha
    arrayq.set_default_backend(None)
    assert arrayq.current_backend() is beta


def test_bad_default_backend_fails_at_entry():
    with pytest.raises(arrayq.UnknownBackendError):
        with arrayq.default_backend("no-such-backend"):
            pass
    with pytest.raises(ValueError, match="no device 'gpu'"):
        with arrayq.default_backend("numpy", device="gpu"):
            pass


def test_context_is_isolated_across_threads(two_backends):
    alpha, beta = two_backends
    barrier = threading.Barrier(2)
    seen = {}

    def worker(name):
        with arrayq.default_backend(name):
            barrier.wait()  # both threads are inside their own block now
            seen[name] = arrayq.current_backend().name
            barrier.wait()

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("alpha", "beta")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"alpha": "alpha", "beta": "beta"}
    assert arrayq.current_backend().name == "numpy"


def test_context_is_isolated_across_asyncio_tasks(two_backends):
    async def task(name, started, release):
        with arrayq.default_backend(name):
            started.set()
            await release.wait()
            return arrayq.backend_of(arrayq.zeros(1)).name

    async def main():
        events = [asyncio.Event() for _ in range(3)]
        release = events[2]
        tasks = [asyncio.create_task(task(n, e, release)) for n, e in zip(("alpha", "beta"), events)]
        await events[0].wait()
        await events[1].wait()
        release.set()
        return await asyncio.gather(*tasks)

    assert asyncio.run(main()) == ["alpha", "beta"]


@dataclasses.dataclass(frozen=True)
class Pair:
    left: object
    right: object
    label: str = "pair"


def test_to_backend_round_trips_containers(two_backends):
    alpha, _ = two_backends
    tree = {
        "w": np.arange(6.0).reshape(2, 3),
        "items": (np.int32(7), [np.ones(2, np.float32)]),
        "pair": Pair(np.zeros(1), None),
        "n": 3,
    }
    moved = arrayq.to_backend(tree, "alpha")
    assert isinstance(moved["w"], alpha.array_cls) and isinstance(moved["items"][1][0], alpha.array_cls)
    assert isinstance(moved["pair"], Pair) and isinstance(moved["pair"].left, alpha.array_cls)
    assert moved["n"] == 3 and moved["pair"].right is None and isinstance(moved["items"], tuple)
    back = arrayq.to_backend(moved, "numpy")
    np.testing.assert_array_equal(back["w"], tree["w"])
    assert back["items"][1][0].dtype == np.float32 and int(back["items"][0]) == 7
    same = np.arange(3)
    assert arrayq.to_backend(same, "numpy") is same  # already there: untouched


def test_type_cache_is_used(two_backends):
    alpha, _ = two_backends
    a = alpha.from_numpy(np.ones(1))
    arrayq.backend_of(a)
    assert _registry._type_cache[type(a)] is alpha
