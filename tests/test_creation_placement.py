"""Creation functions that follow an existing array: ``like=x`` (x's backend and device),
``device=arrayq.Device(...)`` / ``arrayq.device(x)`` (a named backend's device), the
backend's own device values, and the errors when ``like`` and ``device`` disagree. On NumPy,
MLX, the strict example and a test backend with two devices (to see the device followed,
not only the backend)."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

import arrayq as aq
from arrayq_numpy import NumPyBackend
from tests._fake_backends import make_backend_class

# ---------------------------------------------------------------------- a backend with two devices


_TwinBase = make_backend_class("Twin")
#: The backend methods that create an array on a device (the *_like ones: x's, by default).
_CREATING = ("full", "arange", "zeros", "ones", "empty", "eye", "linspace", "from_numpy", "asarray", "full_like",
             "zeros_like", "ones_like", "empty_like")  # fmt: skip


def _placing(name: str):
    base = getattr(_TwinBase, name)
    signature = inspect.signature(getattr(NumPyBackend, name))  # (the tagging wrapper takes *args)

    def method(self, *args, **kwargs):
        out = base(self, *args, **kwargs)
        given = signature.bind(self, *args, **kwargs).arguments
        device = given.get("device")
        if device is None and "x" in given:
            device = self.device_of(given["x"])
        out.where = device or "cpu"
        return out

    return method


class _TwinBackend(_TwinBase):  # type: ignore[misc,valid-type]
    """Arrays remember the device they were created on ("cpu" or "accel"); results of
    other ops are on "cpu" (enough for these tests, which only create)."""

    def devices(self) -> list:
        return ["cpu", "accel"]

    def device_of(self, x):
        return getattr(x, "where", "cpu")


for _name in _CREATING:
    setattr(_TwinBackend, _name, _placing(_name))


@pytest.fixture
def twin():
    backend = _TwinBackend()
    aq.register_backend("twin", backend)
    try:
        yield backend
    finally:
        aq.unregister_backend("twin")


# ---------------------------------------------------------------------- what each function makes

#: name -> (call with placement keywords, the expected values as a NumPy array of the default dtype)
CREATE = {
    "arange": (lambda **kw: aq.arange(2, 7, 2, **kw), np.array([2, 4, 6])),
    "zeros": (lambda **kw: aq.zeros((2, 3), **kw), np.zeros((2, 3))),
    "ones": (lambda **kw: aq.ones(2, **kw), np.ones(2)),
    "empty": (lambda **kw: aq.empty((0, 2), **kw), np.zeros((0, 2))),
    "full": (lambda **kw: aq.full((2,), 1.5, **kw), np.array([1.5, 1.5])),
    "eye": (lambda **kw: aq.eye(2, 3, k=1, **kw), np.array([[0.0, 1, 0], [0, 0, 1]])),
    "linspace": (lambda **kw: aq.linspace(0, 1, 5, **kw), np.array([0, 0.25, 0.5, 0.75, 1])),
    "asarray": (lambda **kw: aq.asarray([[1.0, 2.0]], **kw), np.array([[1.0, 2.0]])),
}


def _other_backends() -> list[str]:
    names = []
    for name in ("mlx", "strict"):
        try:
            aq.get_backend(name)
        except aq.BackendUnavailableError:
            continue
        names.append(name)
    return names


def _an_array(name: str):
    return aq.to_backend(np.arange(3.0, dtype=np.float32), name)


@pytest.mark.parametrize("fn", sorted(CREATE))
@pytest.mark.parametrize("name", _other_backends())
def test_like_creates_on_the_arrays_backend(fn: str, name: str, monkeypatch) -> None:
    """The default backend is NumPy; like= an array of another backend creates there, and
    NumPy is never asked to create (no create-then-move)."""
    call, want = CREATE[fn]

    def refuse(*args, **kwargs):
        raise AssertionError("the NumPy backend was asked to create: the array would then move")

    x = _an_array(name)
    backend = aq.get_backend(name)
    for method in ("full", "arange", "zeros", "ones", "empty", "eye", "linspace", "asarray", "from_numpy"):
        monkeypatch.setattr(NumPyBackend, method, refuse)
    for kw in ({"like": x}, {"device": aq.device(x)}, {"like": x, "device": aq.device(x)}):
        out = call(**kw)
        assert aq.backend_of(out) is backend, kw
        got = np.asarray(aq.to_numpy(out))
        np.testing.assert_array_equal(got, want)
        integer = fn == "arange"
        assert aq.dtype(out) == (backend.default_int if integer else backend.default_float)


@pytest.mark.parametrize("name", _other_backends())
def test_like_with_a_dtype_and_the_other_way_round(name: str) -> None:
    x = _an_array(name)
    assert aq.dtype(aq.zeros(3, dtype="float16" if name == "mlx" else "int32", like=x)) in (aq.float16, aq.int32)
    with aq.default_backend(name):  # the default is now the other backend; like= a NumPy array wins
        out = aq.arange(3, like=np.zeros(1))
        assert type(out) is np.ndarray and out.tolist() == [0, 1, 2]
        assert aq.backend_of(aq.arange(3)) is aq.get_backend(name)


def test_like_follows_the_device_not_only_the_backend(twin) -> None:
    on_accel = aq.zeros(2, device=aq.Device("twin", "accel"))
    assert aq.device(on_accel) == aq.Device("twin", "accel")
    for call, _ in CREATE.values():
        assert aq.device(call(like=on_accel)) == aq.Device("twin", "accel")
    # device= names another device of like's backend: that device
    assert aq.device(aq.ones(2, like=on_accel, device="cpu")) == aq.Device("twin", "cpu")
    assert aq.device(aq.ones(2, like=on_accel, device=aq.Device("twin", "cpu"))) == aq.Device("twin", "cpu")
    assert aq.device(aq.ones(2, like=on_accel, device=aq.Device("twin"))) == aq.Device("twin", "accel")
    # the *_like functions keep x's device unless told
    assert aq.device(aq.zeros_like(on_accel)) == aq.Device("twin", "accel")
    assert aq.device(aq.full_like(on_accel, 2.0, device=aq.Device("twin", "cpu"))) == aq.Device("twin", "cpu")
    # Device works where a backend name does
    moved = aq.to_backend(np.ones(2), aq.device(on_accel))
    assert aq.device(moved) == aq.Device("twin", "accel")
    with aq.default_backend(aq.Device("twin", "accel")):
        assert aq.device(aq.arange(2)) == aq.Device("twin", "accel")


def test_device_values_of_the_default_backend() -> None:
    x = np.zeros(2)
    assert aq.device(x) == aq.Device("numpy", "cpu")
    assert type(aq.zeros(2, device="cpu")) is np.ndarray
    assert type(aq.zeros(2, device=x.device)) is np.ndarray  # the array API idiom, NumPy >= 2
    with pytest.raises(ValueError, match=r"backend 'numpy' has no device 'gpu'.*like=.*arrayq\.Device"):
        aq.zeros(2, device="gpu")  # was silently ignored before
    with pytest.raises(ValueError, match="has no device 'gpu'"):
        aq.asarray(x, device="gpu")


def test_conflicts_and_bad_arguments(twin) -> None:
    x = aq.zeros(2, device=aq.Device("twin", "accel"))
    with pytest.raises(ValueError, match=r"like= is an array of backend 'twin', but device=.*'numpy'.*pass one"):
        aq.zeros(2, like=x, device=aq.Device("numpy", "cpu"))
    with pytest.raises(ValueError, match="backend 'twin' has no device 'tpu'"):
        aq.arange(3, like=x, device="tpu")
    with pytest.raises(ValueError, match=r"device=.*'numpy'.*made on backend 'twin'"):
        aq.ones_like(x, device=aq.Device("numpy"))
    for bad in ([1, 2], 3.0, "cpu"):
        with pytest.raises(TypeError, match="like= takes an array"):
            aq.zeros(2, like=bad)
    with pytest.raises(TypeError, match="arrayq.device takes an array"):
        aq.device(1.5)
    with pytest.raises(aq.UnknownBackendError):
        aq.zeros(2, device=aq.Device("no-such-backend"))


@pytest.mark.parametrize("name", _other_backends())
def test_asarray_moves_only_when_asked(name: str) -> None:
    x = _an_array(name)
    host = np.array([1.0, math.pi], np.float32)
    # like= / a Device of another backend: a copy there (asked for)
    moved = aq.asarray(host, like=x)
    assert aq.backend_of(moved) is aq.get_backend(name)
    np.testing.assert_array_equal(np.asarray(aq.to_numpy(moved)), host)
    back = aq.asarray(x, like=host)
    assert type(back) is np.ndarray and back.tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match=r"copy=False\) cannot move"):
        aq.asarray(x, like=host, copy=False)
    # without them an array stays where it is, whatever the default backend
    assert aq.backend_of(aq.asarray(x)) is aq.get_backend(name)


def test_mlx_devices() -> None:
    mx = pytest.importorskip("mlx.core")
    x = mx.zeros(2)
    here = aq.device(x)
    assert here.backend == "mlx" and here.id in ("cpu", "gpu")
    # MLX's own device objects are device values of the mlx backend
    assert aq.backend_of(aq.zeros(2, like=x, device=mx.cpu)) is aq.get_backend("mlx")
    assert aq.backend_of(aq.arange(3, device=aq.Device("mlx", mx.cpu))) is aq.get_backend("mlx")
    if "gpu" not in aq.get_backend("mlx").devices():
        with pytest.raises(ValueError, match="has no device 'gpu'"):
            aq.zeros(2, like=x, device="gpu")


def test_model_code_creates_on_the_models_backend(tmp_path, monkeypatch) -> None:
    """A Qwen3 forward pass and generation on MLX never hand NumPy arrays to an op for the
    dispatcher to move (NumPy giving way): the prompt's ids, the rotary tables and the masks
    are made on the model's backend and device (issue 20)."""
    pytest.importorskip("mlx.core")
    from arrayq import _dispatch, models

    model = models.load(models.make_checkpoint(tmp_path / "m", "tiny"), backend="mlx")
    moved = []
    real = _dispatch._move
    monkeypatch.setattr(_dispatch, "_move", lambda x, target: moved.append(type(x)) or real(x, target))
    tokens = list(models.generate(model, [1, 2, 3, 4, 5], 4, temperature=0.8, top_k=20, top_p=0.9, seed=0))
    assert len(tokens) == 4
    assert moved == []
