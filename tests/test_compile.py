"""arrayq.compile: compiled == eager on every backend, one compile per signature, static
arguments, nested containers, and the errors a traced function can meet."""

import dataclasses

import numpy as np
import pytest

import arrayq as aq
from arrayq import nn
from arrayq._compile import flatten, unflatten

BACKENDS = ["numpy", "mlx", "strict", "jax"]
#: Backends whose compile hook traces (mx.compile, jax.jit): the Python function runs once per signature.
TRACING = ("mlx", "jax")
#: Backends that record a plan of their calls (Backend.compile_records_plan): traced once per
#: signature too, then replayed; the same kernels run, so the results match eager exactly.
PLANNED = ("numpy",)
#: Where MLX's compiler fuses elementwise chains (exp, silu, rms_norm's mean and rsqrt) it
#: evaluates them in one kernel with its own rounding order, so compiled and eager MLX may
#: differ by a few float32 ulps (XLA likewise: it fuses, and contracts a * b + c into one
#: fused multiply-add); NumPy (a recorded plan replays the same backend calls) and the
#: strict example (eager: no hook) run the same kernels both ways, so they match exactly.
TOLERANCE = {"float32": 1e-5, "float16": 2e-3, "bfloat16": 2e-2}


def _backend(name):
    if name in ("mlx", "jax"):
        pytest.importorskip("mlx.core" if name == "mlx" else "jax")
    if name == "strict":
        pytest.importorskip("arrayq_strict", reason="install examples/arrayq-strict (CI does)")
    return aq.get_backend(name)


def _close(name, got, want, dtype="float32"):
    got, want = aq.to_numpy(got), aq.to_numpy(want)
    if name in TRACING:
        np.testing.assert_allclose(got, want, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])
    else:
        np.testing.assert_array_equal(got, want)


def _arr(b, shape, seed=0, dtype=np.float32):
    return aq.to_backend(np.random.default_rng(seed).standard_normal(shape).astype(dtype), b)


def _block(x, w, qw, norm, mlp, scale):
    h = aq.multiply(aq.exp(aq.tanh(aq.matmul(x, w))), scale)
    h = aq.add(h, aq.linalg.quantized_matmul(x, qw, transpose=True))
    return norm(aq.add(h, mlp(h)))


def _model(b, d=64, f=128):
    def ql(rows, cols, seed):
        return nn.QuantizedLinear(aq.quantize(_arr(b, (rows, cols), seed), group_size=32, bits=4))

    return {
        "w": _arr(b, (d, d), 1),
        "qw": aq.quantize(_arr(b, (d, d), 2), group_size=32, bits=4),
        "norm": nn.RMSNorm(aq.abs(_arr(b, (d,), 3)), eps=1e-5),
        "mlp": nn.SwiGLU(ql(f, d, 4), ql(f, d, 5), ql(d, f, 6)),
    }


@pytest.mark.parametrize("name", BACKENDS)
def test_compiled_equals_eager(name):
    b = _backend(name)
    m = _model(b)
    x = _arr(b, (4, 64), 7)
    fast = aq.compile(_block)
    want = _block(x, m["w"], m["qw"], m["norm"], m["mlp"], 0.5)
    for _ in range(3):
        _close(name, fast(x, m["w"], m["qw"], m["norm"], m["mlp"], 0.5), want)
    info = fast.cache_info()
    assert (info.signatures, info.misses, info.hits) == (1, 1, 2)
    assert info.native == (1 if name in TRACING + PLANNED else 0)


@pytest.mark.parametrize("name", BACKENDS)
def test_one_trace_per_signature(name):
    b = _backend(name)
    traces = []

    @aq.compile
    def f(x, k):
        traces.append(tuple(x.shape))
        return aq.multiply(aq.add(x, 1.0), k)

    x3, x4 = _arr(b, (3,)), _arr(b, (4,))
    for x in (x3, x3, x4, x3, x4):
        f(x, 2.0)
    assert f.cache_info().signatures == 2  # two shapes
    f(x3, 3.0)  # a new static value
    f(aq.astype(x3, aq.float64 if name == "strict" else aq.float16), 3.0)  # a new dtype
    f(x3, 3)  # 3 and 3.0 are different static values
    assert f.cache_info().signatures == 5
    if name in TRACING + PLANNED:  # traced once per signature; replays do not run the Python function
        assert len(traces) == 5
    else:  # eager: the function runs every call
        assert len(traces) == 8
    f.cache_clear()
    assert f.cache_info() == (0, 0, 0, 0)


@pytest.mark.parametrize("name", BACKENDS)
def test_static_arguments_select_the_version(name):
    b = _backend(name)

    @aq.compile
    def f(x, op, axis=None):
        return getattr(aq, op)(x, axis=axis)

    x = _arr(b, (3, 4))
    _close(name, f(x, "sum", axis=1), aq.sum(x, axis=1))
    _close(name, f(x, "max", axis=0), aq.max(x, axis=0))
    assert f.cache_info().signatures == 2


def test_unhashable_static_argument_names_it():
    @aq.compile
    def f(x, options):
        return x

    x = np.ones(3, np.float32)
    with pytest.raises(TypeError, match=r"argument 'options'.*not hashable"):
        f(x, {"a": {1, 2}})
    with pytest.raises(TypeError, match=r"argument 'options'\['a'\] is a set"):
        f(x, options={"a": {1, 2}})


@dataclasses.dataclass
class _State:
    k: object
    v: object
    step: int = 0


@pytest.mark.parametrize("name", BACKENDS)
def test_nested_containers_in_and_out(name):
    b = _backend(name)

    @aq.compile
    def f(pair, d, state):
        a, (c,) = pair
        k = aq.add(state.k, a)
        return {"sum": aq.add(aq.add(a, c), d["x"]), "state": _State(k, state.v, state.step + 1), "tag": d["tag"]}

    a, c, x = _arr(b, (2,), 1), _arr(b, (2,), 2), _arr(b, (2,), 3)
    st = _State(_arr(b, (2,), 4), _arr(b, (2,), 5), 7)
    out = f((a, [c]), {"x": x, "tag": "t"}, st)
    assert out["tag"] == "t" and isinstance(out["state"], _State) and out["state"].step == 8
    _close(name, out["sum"], aq.add(aq.add(a, c), x))
    _close(name, out["state"].k, aq.add(st.k, a))
    out2 = f((a, [c]), {"x": x, "tag": "t"}, _State(out["state"].k, st.v, 7))
    _close(name, out2["state"].k, aq.add(aq.add(st.k, a), a))
    assert f.cache_info().signatures == 1


def test_flatten_round_trip():
    qw = aq.quantize(np.ones((8, 64), np.float32), group_size=32, bits=4)
    obj = {"layer": nn.QuantizedLinear(qw), "xs": [np.zeros(2), (1, "a")], "n": None}
    leaves, structure = flatten(obj)
    assert len(leaves) == 4  # packed, scales, biases, zeros
    hash(structure)
    back = unflatten(structure, leaves)
    assert back["xs"][1] == (1, "a") and back["n"] is None
    assert back["layer"].weight.shape == (8, 64) and back["layer"].weight.bits == 4


@pytest.mark.parametrize("name", TRACING)
def test_host_sync_in_a_trace_is_a_compile_error(name):
    b = _backend(name)
    x = _arr(b, (3,))

    @aq.compile
    def branchy(x):
        return x if float(aq.sum(x)) > 0 else aq.negative(x)

    @aq.compile
    def to_host(x):
        return aq.asarray(aq.to_numpy(x) * 2)

    for f in (branchy, to_host):
        with pytest.raises(aq.CompileError, match="reads an array's value on the host"):
            f(x)
        assert f.cache_info().signatures == 0  # nothing half-made is kept


def test_numpy_arrays_given_to_an_mlx_call_move_like_any_op():
    b = _backend("mlx")
    f = aq.compile(lambda x, y: aq.add(x, y))
    out = f(_arr(b, (3,)), np.ones(3, np.float32))
    assert aq.backend_of(out) is b
