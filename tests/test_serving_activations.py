"""Activation modes as a serving choice: the contract's ``activation_modes``/``activations``/
``batch_invariant`` hooks, ``Serving(activations=)`` entered on the worker thread, the
default of ``Limits.prefill_together`` (None: where the backend is batch-invariant), and
``arrayq generate --activations``. Expected tokens come from ``arrayq.models.generate``, one
request alone in this thread, inside ``arrayq_numpy.activations`` (the module's own switch,
a second way to set the mode)."""

from __future__ import annotations

import threading

import pytest

import arrayq as aq
from arrayq import models
from arrayq.serving import Limits, Serving

arrayq_numpy = pytest.importorskip("arrayq_numpy")
from arrayq_numpy import _native  # noqa: E402

NATIVE = _native.level() is not None
needs_native = pytest.mark.skipif(not NATIVE, reason="NumPy's native kernels are not built or are turned off")
AVAILABLE = [b.name for b in aq.list_backends() if b.available]
#: prompts of 1 to 20 tokens: more than the decode kernel's 8 rows prefilled together
PROMPTS = [[1, 2, 3], [7], [42, 17, 99, 5, 300, 12, 8], list(range(30, 50)), [255, 256]]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return models.make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", "tiny")


@pytest.fixture(scope="module")
def model(tiny):
    return models.load(tiny, backend="numpy")


def alone(model, prompt, n, mode):
    with arrayq_numpy.activations(mode):
        return list(models.generate(model, prompt, n, stop_ids=()))


def test_the_contract_default_offers_float32_only():
    """A backend that does not override the hooks (the contract's defaults, on a bare
    subclass): float32 alone, entered as a no-op; another mode a ValueError naming the
    backend; not batch-invariant."""
    from arrayq.backend import Backend

    bare = Backend()
    assert bare.activation_modes() == ("float32",)
    with bare.activations("float32"):
        pass
    for bad in ("int8", "auto", "", "FLOAT32"):
        with pytest.raises(ValueError, match=r"backend 'unnamed' takes its activations as 'float32' here"):
            bare.activations(bad)
    assert bare.batch_invariant() is False and bare.batch_invariant("cpu") is False


def test_numpy_modes_follow_its_native_kernels():
    """NumPy offers int8 first where its native kernels run (what auto picks); the context
    sets the kernels' mode for this thread only; batch-invariant with int8 alone."""
    backend = aq.get_backend("numpy")
    if not NATIVE:
        assert backend.activation_modes() == ("float32",)
        with pytest.raises(ValueError, match="not 'int8'"):
            backend.activations("int8")
        return
    assert backend.activation_modes() == ("int8", "float32")
    seen = []
    with backend.activations("int8"):
        assert _native.current_activations() == "int8" and backend.batch_invariant()
        other = threading.Thread(target=lambda: seen.append(_native.current_activations()))
        other.start()
        other.join()
        with backend.activations("float32"):
            assert _native.current_activations() == "float32" and not backend.batch_invariant()
    assert seen == [_native._default_activations()]  # (another thread keeps the process default)
    with pytest.raises(ValueError, match="backend 'numpy'"):
        backend.activations("int4")


@needs_native
@pytest.mark.parametrize("asked, mode, together", [("auto", "int8", True), ("int8", "int8", True), (None, None, False)])
def test_serving_enters_the_mode_on_its_worker(tiny, model, asked, mode, together):
    """``Serving(activations=)`` holds on the worker thread (a listener, which runs there,
    reads the kernels' mode) and not in the caller's; prefill_together's default follows
    (together with int8, alone with the unasked float32). Five requests that arrive
    together each give the tokens generate() gives it alone in that mode, bit for bit."""
    worker_modes = set()

    def listen(request, token):
        worker_modes.add(_native.current_activations())

    n = 6
    with Serving(lambda: models.load(tiny, backend="numpy"), Limits(max_batch=8), stop_ids=(), activations=asked) as s:
        assert (s.activations, s.prefill_together) == (mode, together)
        requests = [s.submit(p, n, listener=listen) for p in PROMPTS]
        got = [r.result(60) for r in requests]
        passes = s.stats()["prefill_passes"]
    assert _native.current_activations() == _native._default_activations()  # the caller's thread untouched
    assert worker_modes == {mode or _native._default_activations()}
    assert got == [alone(model, p, n, mode or _native._default_activations()) for p in PROMPTS]
    assert passes < len(PROMPTS) if together else passes == len(PROMPTS)


def test_forced_prefill_together_and_bad_modes(tiny):
    """An explicit prefill_together wins over the backend's answer; a mode the backend does
    not offer fails the constructor (on the worker, where the model's backend is known);
    a mode that is not a string fails before any loading."""
    load = lambda: models.load(tiny, backend="numpy")  # noqa: E731
    with Serving(load, Limits(prefill_together=True), activations="float32") as s:
        assert s.prefill_together is True and s.activations == "float32"
    with Serving(load, Limits(prefill_together=False), activations="auto") as s:
        assert s.prefill_together is False
    with pytest.raises(ValueError, match="backend 'numpy'.*not 'int4'"):
        Serving(load, activations="int4")
    calls = []
    with pytest.raises(ValueError, match="activations must be a mode's name"):
        Serving(lambda: calls.append(1), activations=8)
    assert not calls
    with pytest.raises(ValueError, match="prefill_together must be True, False or None"):
        Limits(prefill_together=1).check()


@pytest.mark.skipif("mlx" not in AVAILABLE, reason="MLX is not installed")
def test_mlx_serves_float32_and_prefills_together_on_its_cpu(tiny):
    """MLX offers float32 alone; on its CPU device prompts are prefilled together by
    default (batch-invariant there: tests/test_serving_prefill.py); int8 is refused."""
    load = lambda: models.load(tiny, backend="mlx")  # noqa: E731
    with Serving(load, activations="auto") as s:
        assert s.activations == "float32" and s.prefill_together is True
    with pytest.raises(ValueError, match="backend 'mlx'.*not 'int8'"):
        Serving(load, activations="int8")


@needs_native
def test_cli_generate_takes_the_servers_mode(tiny, model, capsys):
    """``arrayq generate``'s default is auto (int8 on NumPy's native kernels), the tokens
    generate() gives in that mode; --activations float32 gives the float32 ones."""
    from arrayq import cli

    args = ["generate", "--model", str(tiny), "--backend", "numpy", "--prompt-ids", "1,2,3,4,5,6,7"]
    args += ["--max-tokens", "8", "--ignore-eos"]
    for flag, mode in (([], "int8"), (["--activations", "float32"], "float32")):
        assert cli.main([*args, *flag]) == 0
        out, err = capsys.readouterr()
        assert [int(t) for t in out.split()] == alone(model, [1, 2, 3, 4, 5, 6, 7], 8, mode)
        assert f"({mode} into quantized matmuls)" in err
    assert cli.main([*args, "--activations", "int4"]) == 2
    assert "invalid choice: 'int4'" in capsys.readouterr().err


@pytest.mark.parametrize("together", [True, False])
def test_a_float16_batch_cache_gives_generates_float16_tokens(tiny, model, together):
    """``Serving(kv_dtype="float16")``: five requests at once, prefilled together or each
    alone, each give exactly the tokens ``generate(kv_dtype="float16")`` gives it alone (both
    round every key and value to float16 once, when written, and NumPy's attention reads
    float16 as the float32 kernel reads the widened values), in the server's default mode."""
    n = 6
    limits = Limits(max_batch=8, prefill_together=together)
    load = lambda: models.load(tiny, backend="numpy")  # noqa: E731
    with Serving(load, limits, stop_ids=(), activations="auto", kv_dtype="float16") as serving:
        assert serving._cache.dtype == aq.float16
        requests = [serving.submit(p, n) for p in PROMPTS]
        got = [r.result(60) for r in requests]
        mode = serving.activations
    with aq.get_backend("numpy").activations(mode):
        want = [list(models.generate(model, p, n, stop_ids=(), kv_dtype="float16")) for p in PROMPTS]
    assert got == want


def test_kv_dtype_refusals(tiny, monkeypatch):
    """A dtype that is not floating is a TypeError before any loading; a kv_dtype for a model
    not decoded in batches (here: batching switched off) a ValueError from the constructor."""
    from arrayq.serving import _batch

    calls = []
    with pytest.raises(TypeError, match="floating"):
        Serving(lambda: calls.append(1), kv_dtype="int8")
    assert not calls
    monkeypatch.setattr(_batch, "supports", lambda model: False)
    with pytest.raises(ValueError, match="not decoded in batches"):
        Serving(lambda: models.load(tiny, backend="numpy"), kv_dtype="float16")
