"""``arrayq.compile``: a compiled function gives what the same function gives eagerly.

The reference runs every function eagerly (it has no ``compile`` hook); the backend under
test runs it through ``arrayq.compile``, so a backend whose hook traces (MLX's
``mx.compile``) is compared with eager execution. Each function is compiled once, at
module level, so the cases also exercise the per-signature cache across calls; several cases
call it a few times in one case (a cache written over several calls, new shapes), so a
backend that replays (a recorded plan, NumPy) is checked on replays, not only on the trace."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from ._common import Case, _arrays, _dtype


def _block(x: Any, w: Any, b: Any, *, scale: float = 0.5) -> Any:
    """Elementwise ops, a reduction, matmul and a Python scalar: what a layer does."""
    import arrayq as aq

    h = aq.add(aq.matmul(x, aq.matrix_transpose(w)), b)
    h = aq.multiply(h, aq.divide(1, aq.add(aq.exp(aq.negative(h)), 1)))  # SiLU
    return aq.multiply(aq.divide(h, aq.add(aq.max(aq.abs(h), axis=-1, keepdims=True), 1)), scale)


def _quantized(x: Any, qw: Any) -> Any:
    import arrayq as aq

    y = aq.linalg.quantized_matmul(x, qw)
    return aq.nn.rms_norm(y, None, eps=1e-5)


def _cache_step(cache: Any, new: Any) -> Any:
    """A decode step's KV update: write ``new`` at the position (in place where the backend
    may: the cache is donated), advance it, and read the first positions back."""
    import arrayq as aq

    keys = aq.slice_update(cache["keys"], new, cache["position"], axis=1)
    return aq.sum(keys[:, :3, :], axis=1), {"keys": keys, "position": aq.add(cache["position"], 1)}


def _with_constants(x: Any) -> Any:
    """Arrays made inside (no input behind them): constants of a trace."""
    import arrayq as aq

    ramp = aq.multiply(aq.arange(x.shape[-1], dtype=aq.float32), 0.25)
    return aq.add(x, ramp), aq.ones((2,), dtype=aq.float32)


def _branchy(x: Any) -> Any:
    """A Python branch on an array's value: a host read inside the function."""
    import arrayq as aq

    return aq.multiply(x, 2.0) if float(aq.sum(x)) > 0 else aq.negative(x)


def _gated(gate_up: Any) -> Any:
    """A gated MLP's middle: swiglu of a fused gate/up projection's halves, then a norm."""
    import arrayq as aq

    return aq.nn.rms_norm(aq.nn.swiglu(gate_up), None, eps=1e-5)


def _norm_rows(x: Any) -> Any:
    import arrayq as aq

    return aq.divide(x, aq.sum(aq.abs(x), axis=-1, keepdims=True))


# made on first use (importing arrayq here would be circular), then reused by every case
_BLOCK: Any = None
_QUANTIZED: Any = None
_COMPILED: dict[str, Any] = {}


def _compiled(aq: Any, fn: Any, **options: Any) -> Any:
    if fn.__name__ not in _COMPILED:
        _COMPILED[fn.__name__] = aq.compile(fn, **options)
    return _COMPILED[fn.__name__]


def _call_block(aq: Any, x: Any, w: Any, b: Any, scale: float = 0.5) -> Any:
    global _BLOCK
    _BLOCK = _BLOCK or aq.compile(_block)
    return _BLOCK(x, w, b, scale=scale)


def _call_quantized(aq: Any, x: Any, qw: Any) -> Any:
    global _QUANTIZED
    _QUANTIZED = _QUANTIZED or aq.compile(_quantized)
    return _QUANTIZED(x, qw)


def _call_cache(aq: Any, keys: Any, position: Any, *news: Any) -> Any:
    step = _compiled(aq, _cache_step, donate=("cache",))
    cache = {"keys": keys, "position": position}
    reads = []
    for new in news:
        read, cache = step(cache, new)
        reads.append(read)
    return (*reads, cache["keys"], cache["position"])


def _call_constants(aq: Any, x: Any) -> Any:
    f = _compiled(aq, _with_constants)
    return (*f(x), *f(aq.multiply(x, 2.0)))


def _call_branchy(aq: Any, x: Any) -> Any:
    """The documented behaviour: a backend that traces (MLX, JAX) raises CompileError; one that
    records plans (NumPy) runs the signature eagerly. Never a branch frozen at the first call."""
    f = _compiled(aq, _branchy)
    try:
        return f(x), f(aq.negative(x)), f(x)
    except aq.CompileError:
        return _branchy(x), _branchy(aq.negative(x)), _branchy(x)


def _call_gated(aq: Any, gate_up: Any) -> Any:
    f = _compiled(aq, _gated)
    return f(gate_up), f(aq.multiply(gate_up, -0.5)), f(gate_up)


def _call_shapes(aq: Any, x: Any, y: Any) -> Any:
    f = _compiled(aq, _norm_rows)
    return f(x), f(y), f(x), f(y)


def compile_cases() -> list[Case]:
    cases = []
    for dtype, rows in itertools.product(("float32", "float16", "bfloat16"), (1, 5)):
        cases.append(
            Case(
                f"compile[block,{dtype},x({rows},64)]",
                "compile",
                (dtype,),
                _arrays(((rows, 64), dtype, -1, 1), ((32, 64), dtype, -0.3, 0.3), ((32,), dtype, -1, 1)),
                _call_block,
                upcast=dtype != "float32",
            )
        )

    def make_quantized(rng: np.random.Generator) -> list[Any]:
        from ... import quant

        qw = quant.quantize(rng.standard_normal((48, 128)).astype(np.float32), group_size=64, bits=4)
        return [rng.uniform(-1, 1, (3, 128)).astype(_dtype("float32")), qw]

    cases.append(
        Case("compile[quantized_matmul+rms_norm,float32]", "compile", ("float32",), make_quantized, _call_quantized)
    )

    def make_cache(rng: np.random.Generator) -> list[Any]:
        news = [rng.uniform(-1, 1, (2, 1, 4)).astype(np.float32) for _ in range(4)]
        return [np.zeros((2, 6, 4), np.float32), np.asarray(1, np.int32), *news]

    cases += [
        Case("compile[cache slice_update,4 calls]", "compile", ("float32",), make_cache, _call_cache),
        Case(
            "compile[constants made inside]",
            "compile",
            ("float32",),
            _arrays(((3, 5), "float32", -1, 1)),
            _call_constants,
        ),
        Case("compile[host read inside]", "compile", ("float32",), _arrays(((4,), "float32", 0.1, 1)), _call_branchy),
        Case(
            "compile[swiglu of one array's halves,3 calls]",
            "compile",
            ("float32",),
            _arrays(((1, 1, 96), "float32", -4, 4)),
            _call_gated,
        ),
        Case(
            "compile[new shapes retrace]",
            "compile",
            ("float32",),
            _arrays(((3, 8), "float32", 0.5, 1), ((5, 2), "float32", 0.5, 1)),
            _call_shapes,
        ),
    ]
    return cases
