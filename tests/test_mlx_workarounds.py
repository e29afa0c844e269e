"""Each MLX defect that ``arrayq_mlx._workarounds`` works around, asserted to be still there.

These tests pass while the installed MLX has the defect. One that fails says MLX has fixed
it: delete the workaround it names (its docstring points back here) and this test. The
backend's results are checked elsewhere (tests/test_mlx_backend.py, the conformance suite);
here only MLX itself is called. Seen in mlx 0.32.4 (CPU build; the CUDA ones with
mlx-cuda-13 0.32.4 on an H100, docs/benchmarks-cuda.md). Crashes and hangs run in a child
process.
"""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")


def _has_cuda() -> bool:
    try:
        return bool(mx.cuda.is_available())
    except Exception:
        return False


cuda_only = pytest.mark.skipif(not _has_cuda(), reason="a defect of MLX's CUDA kernels; this MLX has no CUDA device")


def _run(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str] | None:
    """``code`` run by a fresh Python (after ``import mlx.core as mx, numpy as np``); None if it
    ran past ``timeout`` seconds."""
    script = "import mlx.core as mx, numpy as np\n" + textwrap.dedent(code)
    try:
        return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


# ----------------------------------------------------------------------------- creation


def test_full_takes_the_kind_of_the_fill() -> None:
    """Workaround: ``full``. ``mx.full`` ignores a ``dtype`` of another kind than its scalar
    fill: bool with 0 gives int32, int8 with 2.5 gives float32."""
    assert mx.full((2,), 0, dtype=mx.bool_).dtype == mx.int32
    assert mx.full((2,), 2.5, dtype=mx.int8).dtype == mx.float32


def test_eye_refuses_a_diagonal_past_int32() -> None:
    """Workaround: ``eye``. ``k`` is a C int in MLX; 2**31 does not bind."""
    with pytest.raises(TypeError):
        mx.eye(2, 2, 2**31)


# ----------------------------------------------------------------------------- reductions


def test_prod_and_all_of_an_empty_array_from_data() -> None:
    """Workaround: ``empty_reduction``. The empty product is 1 and the empty ``all`` True;
    over every axis of an empty array made from data MLX answers 0 / False (every time in a
    fresh process; now and then right inside pytest, so 20 tries)."""
    wrong = 0
    for _ in range(20):
        empty = mx.array(np.zeros((0, 3), np.float32))
        wrong += (mx.prod(empty).item() != 1.0) + (mx.all(empty).item() is not True)
    assert wrong > 0


def test_sum_widens_narrow_integers() -> None:
    """Workaround: ``sum_prod_in_dtype``. MLX widens int8/int16 sums (as NumPy does by default)
    and takes no ``dtype=`` to ask otherwise; once it does, pass the dtype instead."""
    x = mx.array([1, 2], dtype=mx.int8)
    assert mx.sum(x).dtype == mx.int32 and mx.prod(x.astype(mx.int16)).dtype == mx.int32
    with pytest.raises(TypeError):
        mx.sum(x, dtype=mx.int8)  # type: ignore[call-arg]


def test_var_over_an_empty_axis_hangs() -> None:
    """Workaround: ``nan_where_empty``. var and mean over an empty axis of an array made
    from data, with a non-empty result, hang now and then (4 of 5 fresh processes within
    50 tries, measured); 10 processes of 3 s each, so a fixed MLX fails this in ~10 s."""
    code = """
        a = mx.array(np.zeros((2, 0, 3), np.float32))
        for _ in range(50):
            v, m = mx.var(a, axis=1), mx.mean(a, axis=1)
            assert np.isnan(np.array(v)).all() and np.isnan(np.array(m)).all()
    """
    outcomes = []
    for _ in range(10):
        done = _run(code, timeout=3)
        if done is None or done.returncode != 0:
            return  # hung, or a result that is not NaN (-inf was seen too): still there
        outcomes.append(done.returncode)
    pytest.fail(f"MLX no longer hangs on var/mean over an empty axis ({len(outcomes)} clean runs): drop the hang note")


# ----------------------------------------------------------------------------- float64 accuracy


@pytest.mark.parametrize("op", ["exp", "sin", "cos", "erf", "logaddexp"])
def test_float64_transcendentals_are_float32_accurate(op: str) -> None:
    """Workarounds: ``FLOAT64_INACCURATE`` with ``exp64``/``sin64``/``cos64``, ``logaddexp64``,
    and ``MLXBackend.erf``'s float64 branch. MLX's CPU kernels give ~1e-7 relative on float64."""
    xs = np.linspace(-3.0, 3.0, 101)
    x = mx.array(xs, dtype=mx.float64)
    with mx.stream(mx.cpu):
        if op == "logaddexp":
            got, want = np.array(mx.logaddexp(x, x * 0.5)), np.logaddexp(xs, xs * 0.5)
        elif op == "erf":
            got, want = np.array(mx.erf(x)), np.array([math.erf(v) for v in xs])
        else:
            got, want = np.array(getattr(mx, op)(x)), getattr(np, op)(xs)
    assert np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-300)) > 1e-9


def test_float64_det_is_float32_accurate() -> None:
    """Workaround: ``det64`` (``MLXLinalg.det`` on float64). The exact determinant of the
    float64 matrix comes from Gaussian elimination in fractions."""
    from fractions import Fraction

    a = np.random.default_rng(0).standard_normal((4, 4))
    rows = [[Fraction(v) for v in row] for row in a.tolist()]
    exact = Fraction(1)
    for j in range(4):
        p = next(i for i in range(j, 4) if rows[i][j] != 0)
        if p != j:
            rows[j], rows[p], exact = rows[p], rows[j], -exact
        exact *= rows[j][j]
        for i in range(j + 1, 4):
            f = rows[i][j] / rows[j][j]
            rows[i] = [u - f * w for u, w in zip(rows[i], rows[j])]
    got = mx.linalg.det(mx.array(a, dtype=mx.float64), stream=mx.cpu).item()
    assert abs(got - float(exact)) / abs(float(exact)) > 1e-10


def test_trace_outside_the_matrix_answers_at_once() -> None:
    """Workaround: ``trace_outside`` (``MLXLinalg.trace``). MLX's own ``mx.trace`` past the
    matrix spins for 20 s to over 100 s in some fresh processes and answers at once in others
    (more often on an idle machine), so whether MLX still has the bug cannot be asserted
    reliably; what is asserted is that arrayq's trace never asks it: a fresh process answers
    0 well within the time the spin takes, three times running."""
    code = """
        import arrayq as aq
        x = mx.array(np.ones((2, 3, 4), np.float32))
        for offset in (5, -3, 4):
            out = aq.linalg.trace(x, offset=offset)
            assert np.array(out).tolist() == [0.0, 0.0], (offset, out)
    """
    for _ in range(3):
        done = _run(code, timeout=15)
        assert done is not None, "arrayq's trace past the matrix spun: trace_outside no longer routes around mx.trace"
        assert done.returncode == 0, done.stderr[-2000:]


# ----------------------------------------------------------------------------- empty operands


@cuda_only
def test_cuda_matmul_of_empty_operands_crashes() -> None:
    """Workaround: ``no_empty_kernel``."""
    done = _run("mx.eval(mx.matmul(mx.zeros((0, 4)), mx.zeros((4, 3)), stream=mx.gpu))")
    assert done is None or done.returncode != 0


@cuda_only
def test_cuda_arange_of_an_empty_range_crashes() -> None:
    """Workaround: ``empty_range``."""
    done = _run("mx.eval(mx.arange(3, 3, 1, stream=mx.gpu))")
    assert done is None or done.returncode != 0


# ----------------------------------------------------------------------------- quantized


def _quantized(shape: tuple[int, ...], bits: int = 4) -> tuple[object, object, object]:
    w = mx.array(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    return tuple(mx.quantize(w, group_size=64, bits=bits, stream=mx.cpu))  # type: ignore[return-value]


def test_quantized_matmul_drops_the_weight_batch() -> None:
    """Workaround: ``qmm_x_with_weight_batch_axes``. (M, K) x (B, N, K) must be (B, M, N)."""
    p, s, b = _quantized((3, 8, 64))
    out = mx.quantized_matmul(mx.ones((2, 64)), p, s, b, transpose=True, group_size=64, bits=4)
    assert out.shape == (2, 8)


def test_cpu_gather_qmm_of_zero_rows_dies() -> None:
    """Workaround: ``cpu_gather_qmm_empty_m``."""
    done = _run("""
        w = mx.array(np.ones((3, 8, 64), np.float32))
        p, s, b = mx.quantize(w, group_size=64, bits=4)
        rhs = mx.array([0], dtype=mx.uint32)
        out = mx.gather_qmm(mx.zeros((0, 64)), p, s, b, None, rhs, transpose=True, group_size=64, bits=4, stream=mx.cpu)
        mx.eval(out)
    """)
    assert done is not None and done.returncode == -signal.SIGFPE, done


@cuda_only
def test_cuda_quantize_rounds_ties_up() -> None:
    """Workaround: ``quantize_stream`` (one of its four CUDA format differences; once this
    passes, check the others in docs/benchmarks-cuda.md before running quantize on the GPU).
    With scale -1 and bias 15, 2.5 -> 12.5 is a tie: the CPU rounds it to even (12)."""
    row = np.zeros(64, np.float32)
    row[[1, 2]] = 15.0, 2.5
    w = mx.array(np.stack([row, row])).astype(mx.bfloat16)
    cpu = np.array(mx.quantize(w, group_size=64, bits=4, stream=mx.cpu)[0])
    gpu = np.array(mx.quantize(w, group_size=64, bits=4, stream=mx.gpu)[0])
    assert (cpu.view(np.uint8)[0, 1] & 0xF) == 12
    assert not np.array_equal(cpu, gpu)


@cuda_only
def test_cuda_quantized_matmul_has_no_one_bit() -> None:
    """Workaround: ``cuda_no_one_bit``."""
    p, s, b = _quantized((8, 64), bits=1)
    with pytest.raises(ValueError, match="1-bit"):
        mx.eval(mx.quantized_matmul(mx.ones((2, 64)), p, s, b, group_size=64, bits=1, stream=mx.gpu))


@cuda_only
def test_cuda_quantized_matmul_rejects_a_vector() -> None:
    """Workaround: ``cuda_qmm_vector_as_row``."""
    done = _run("""
        p, s, b = mx.quantize(mx.ones((8, 64)), group_size=64, bits=4, stream=mx.cpu)
        mx.eval(mx.quantized_matmul(mx.ones((64,)), p, s, b, group_size=64, bits=4, stream=mx.gpu))
    """)
    assert done is None or done.returncode != 0


@cuda_only
def test_cuda_quantized_matmul_mispairs_broadcast_batches() -> None:
    """Workaround: ``cuda_qmm_mispairs_batch_axes`` / ``qmm_batch_as_gather``: (4, 1, M, K) x
    (3, N, K) must pair x's 4 with each of the 3 weights, as the CPU does."""
    p, s, b = _quantized((3, 8, 64))
    x = mx.array(np.random.default_rng(1).standard_normal((4, 1, 2, 64)).astype(np.float32))
    cpu, gpu = (
        np.array(mx.quantized_matmul(x, p, s, b, group_size=64, bits=4, stream=device)) for device in (mx.cpu, mx.gpu)
    )
    assert cpu.shape == gpu.shape == (4, 3, 2, 8)
    assert not np.allclose(cpu, gpu, rtol=1e-2, atol=1e-2)
