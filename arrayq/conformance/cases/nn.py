"""Cases for the fused model ops arrayq.nn calls: scaled_dot_product_attention (with its
bad-input cases), rms_norm, rope, swiglu (of two arrays, and of one's halves), qkv_heads and
add_rms_norm."""

from __future__ import annotations

import itertools
from typing import Any

from ._common import FLOATS, Case, _arrays

#: (B, H, Hkv, L, S, D, mask) for scaled_dot_product_attention: decode (one query row,
#: grouped heads), a causal prefill chunk after cached keys, additive masks (the mask's
#: shape: one for all, one per batch entry as padding masks are, one per query head),
#: no grouping.
ATTENTION_SHAPES: tuple[tuple[int, int, int, int, int, int, Any], ...] = (
    (1, 4, 2, 1, 9, 16, None),
    (2, 2, 1, 3, 5, 8, "causal"),
    (1, 2, 2, 2, 4, 8, (1, 1, 2, 4)),
    (2, 4, 2, 1, 6, 8, (2, 1, 1, 6)),
    (1, 4, 2, 2, 5, 8, (1, 4, 2, 5)),
    (1, 3, 3, 4, 4, 32, None),
)


def nn_cases() -> list[Case]:
    """The model composites arrayq.nn calls. (Run on NumPy itself, these compare its
    overrides with themselves; tests/test_nn.py and tests/test_native_kernels.py check them
    against float64 NumPy written independently.)"""
    cases = []
    for (b, h, hkv, length, s, d, mask), dtype in itertools.product(ATTENTION_SHAPES, FLOATS):
        specs = [((b, h, length, d), dtype, -2, 2), ((b, hkv, s, d), dtype, -2, 2), ((b, hkv, s, d), dtype, -2, 2)]
        if isinstance(mask, tuple):  # an additive mask with a -inf entry (a key a query must not see)
            specs.append((mask, "float32", -1, 1))
            mask = "array"

        def call(aq: Any, q: Any, k: Any, v: Any, *m: Any, mask: Any = mask) -> Any:
            if m:
                m = (aq.where(aq.reshape(aq.arange(m[0].size), m[0].shape) == 1, -float("inf"), m[0]),)
            return aq.nn.scaled_dot_product_attention(q, k, v, scale=0.25, mask=m[0] if m else mask)

        cases.append(
            Case(
                f"scaled_dot_product_attention[{dtype},q{(b, h, length, d)},kv{(b, hkv, s, d)},"
                f"{'mask' + str(specs[3][0]) if mask == 'array' else mask}]",
                "scaled_dot_product_attention",
                (dtype,),
                _arrays(*specs),
                call,
                upcast=dtype in ("float16", "bfloat16"),
            )
        )
    # key_length: attention over the first n keys of a longer (fixed-size cache) buffer, the
    # count as an int and as a 0-d array (a backend's prefix_attention, else the prefix mask)
    for (b, h, hkv, length, s, d, mask, n, as_array), dtype in itertools.product(
        (
            (1, 4, 2, 1, 9, 32, None, 5, True),
            (2, 2, 2, 1, 6, 64, None, 6, False),
            (1, 2, 1, 3, 8, 8, "causal", 4, True),
            (1, 4, 2, 2, 7, 16, (1, 1, 2, 7), 3, True),
        ),
        FLOATS,
    ):
        specs = [((b, h, length, d), dtype, -2, 2), ((b, hkv, s, d), dtype, -2, 2), ((b, hkv, s, d), dtype, -2, 2)]
        if isinstance(mask, tuple):
            specs.append((mask, dtype, -1, 1))
            mask = "array"

        def prefix_call(
            aq: Any, q: Any, k: Any, v: Any, *m: Any, mask: Any = mask, n: int = n, arr: bool = as_array
        ) -> Any:
            key_length = aq.asarray(n, dtype=aq.int32, like=q) if arr else n
            return aq.nn.scaled_dot_product_attention(
                q, k, v, scale=0.25, mask=m[0] if m else mask, key_length=key_length
            )

        cases.append(
            Case(
                f"scaled_dot_product_attention[{dtype},q{(b, h, length, d)},kv{(b, hkv, s, d)},{mask},"
                f"key_length={n}{' array' if as_array else ''}]",
                "scaled_dot_product_attention",
                (dtype,),
                _arrays(*specs),
                prefix_call,
                upcast=dtype in ("float16", "bfloat16"),
            )
        )
    for (shape, with_weight), dtype in itertools.product((((3, 8), True), ((2, 1, 4, 16), False)), FLOATS):
        norm_specs: list[tuple[tuple[int, ...], str, float, float]] = [(shape, dtype, -3, 3)]
        if with_weight:
            norm_specs.append(((shape[-1],), dtype, -2, 2))
        cases.append(
            Case(
                f"rms_norm[{dtype},x{shape},{'weight' if with_weight else 'no weight'}]",
                "rms_norm",
                (dtype,),
                _arrays(*norm_specs),
                lambda aq, x, *w: aq.nn.rms_norm(x, w[0] if w else None, eps=1e-5),
                upcast=dtype in ("float16", "bfloat16"),
            )
        )
    # swiglu: a decode row and prefill rows whose length leaves a tail after any vector width;
    # gate values past the exponential's overflow for float16 (|g| > 11) on both sides
    for shape, dtype in itertools.product(((1, 1, 40), (3, 2, 13)), FLOATS):
        cases.append(
            Case(
                f"swiglu[{dtype},{shape}]",
                "swiglu",
                (dtype,),
                _arrays((shape, dtype, -14, 14), (shape, dtype, -2, 2)),
                lambda aq, g, u: aq.nn.swiglu(g, u),
                upcast=dtype in ("float16", "bfloat16"),
            )
        )
    # swiglu of one array (a fused gate/up projection's output): its halves
    for shape, dtype in itertools.product(((1, 1, 80), (3, 2, 26)), FLOATS):
        cases.append(
            Case(
                f"swiglu_halves[{dtype},{shape}]",
                "swiglu_halves",
                (dtype,),
                _arrays((shape, dtype, -14, 14)),
                lambda aq, gu: aq.nn.swiglu(gu),
                upcast=dtype in ("float16", "bfloat16"),
            )
        )
    for what, shape, dtype, error, match in (
        ("odd width", (2, 9), "float32", "ValueError", "swiglu of one array takes"),
        ("0-d", (), "float32", "ValueError", "swiglu of one array takes"),
        ("integers", (2, 8), "int32", "TypeError", "swiglu takes real floating"),
    ):
        cases.append(
            Case(
                f"error:swiglu_halves[{what}]",
                "swiglu_halves",
                (dtype,),
                _arrays((shape, dtype, -1, 1)),
                lambda aq, gu: aq.nn.swiglu(gu),
                expect="raises",
                raises=error,
                match=match,
            )
        )
    for what, (gs, us), dtypes, error, match in (
        ("shapes differ", ((2, 8), (2, 9)), ("float32", "float32"), "ValueError", "swiglu takes gate and up"),
        ("dtypes differ", ((2, 8), (2, 8)), ("float32", "float64"), "ValueError", "swiglu takes gate and up"),
        ("integers", ((2, 8), (2, 8)), ("int32", "int32"), "TypeError", "swiglu takes real floating"),
    ):
        cases.append(
            Case(
                f"error:swiglu[{what}]",
                "swiglu",
                tuple(dict.fromkeys(dtypes)),  # both: a backend without float64 skips the case
                _arrays((gs, dtypes[0], -1, 1), (us, dtypes[1], -1, 1)),
                lambda aq, g, u: aq.nn.swiglu(g, u),
                expect="raises",
                raises=error,
                match=match,
            )
        )
    # rope: all features or a prefix, both pair layouts, positions from 0 and after a cache;
    # offsets stay small so that a native kernel's float32 angles (MLX) are within the
    # case's half-precision tolerance (the rope docstring has the error at larger ones)
    for (shape, dims, traditional, offset), dtype in itertools.product(
        (
            ((1, 2, 3, 8), 8, False, 0),
            ((2, 3, 4, 16), 8, False, 37),
            ((1, 2, 5, 12), 12, True, 5),
            ((3, 6, 8), 4, True, 0),
        ),
        FLOATS,
    ):
        cases.append(
            Case(
                f"rope[{dtype},x{shape},dims={dims},{'traditional' if traditional else 'rotate-half'},offset={offset}]",
                "rope",
                (dtype,),
                _arrays((shape, dtype, -3, 3)),
                lambda aq, x, dims=dims, t=traditional, o=offset: aq.nn.rope(
                    x, dims, traditional=t, base=10000.0, offset=o
                ),
                upcast=dtype in ("float16", "bfloat16"),
            )
        )
    for what, dims, offset in (("odd dims", 3, 0), ("dims above the features", 16, 0), ("negative offset", 8, -1)):
        cases.append(
            Case(
                f"error:rope[{what}]",
                "rope",
                ("float32",),
                _arrays(((1, 2, 3, 8), "float32", -1, 1)),
                lambda aq, x, dims=dims, o=offset: aq.nn.rope(x, dims, offset=o),
                expect="raises",
                raises="ValueError",
                match="rope (dims|offset)",
            )
        )
    bad = {  # what the call must reject, with the reference's exception
        "kv heads not dividing q heads": ((1, 3, 1, 4), (1, 2, 2, 4), (1, 2, 2, 4), None),
        "k and v lengths differ": ((1, 2, 1, 4), (1, 2, 3, 4), (1, 2, 2, 4), None),
        "no kv heads": ((1, 2, 1, 4), (1, 0, 3, 4), (1, 0, 3, 4), None),
        "unknown mask": ((1, 2, 1, 4), (1, 2, 3, 4), (1, 2, 3, 4), "full"),
        "causal with more queries than keys": ((1, 2, 3, 4), (1, 2, 2, 4), (1, 2, 2, 4), "causal"),
    }
    for what, (qs, ks, vs, mask) in bad.items():
        cases.append(
            Case(
                f"error:scaled_dot_product_attention[{what}]",
                "scaled_dot_product_attention",
                ("float32",),
                _arrays((qs, "float32", -1, 1), (ks, "float32", -1, 1), (vs, "float32", -1, 1)),
                lambda aq, q, k, v, mask=mask: aq.nn.scaled_dot_product_attention(q, k, v, scale=1.0, mask=mask),
                expect="raises",
            )
        )
    bad_lengths = {  # key_length values the call must reject with ValueError (4 keys, 1 query)
        "key_length 0": lambda aq, q: 0,
        "key_length above the keys": lambda aq, q: 5,
        "key_length a 1-d array": lambda aq, q: aq.asarray([2], dtype=aq.int32, like=q),
        "key_length a float array": lambda aq, q: aq.asarray(2.0, dtype=aq.float32, like=q),
        "key_length a string": lambda aq, q: "2",
    }
    for what, make in bad_lengths.items():
        cases.append(
            Case(
                f"error:scaled_dot_product_attention[{what}]",
                "scaled_dot_product_attention",
                ("float32",),
                _arrays(
                    ((1, 2, 1, 4), "float32", -1, 1), ((1, 2, 4, 4), "float32", -1, 1), ((1, 2, 4, 4), "float32", -1, 1)
                ),
                lambda aq, q, k, v, make=make: aq.nn.scaled_dot_product_attention(
                    q, k, v, scale=1.0, key_length=make(aq, q)
                ),
                expect="raises",
                raises="ValueError",
                match="key_length",
            )
        )
    return cases + _fused_cases()


def _fused_cases() -> list[Case]:
    """qkv_heads (decode and prefill rows, both pair layouts, rope over a prefix of the
    features, positions after a cache; head sizes of 32 and 64 too, which MLX's CUDA kernel
    takes) and add_rms_norm (with and without a weight), with their bad-input cases."""
    cases = []
    shapes = [(1, 1, 4, 2, 16, 16, False, 7), (2, 3, 2, 1, 8, 8, True, 0), (1, 2, 3, 3, 12, 8, False, 5)]
    shapes += [(2, 3, 2, 1, 32, 32, False, 9), (1, 2, 2, 2, 64, 32, True, 300)]
    for (b, length, h, hkv, d, dims, traditional, offset), dtype in itertools.product(shapes, FLOATS):
        cases.append(
            Case(
                f"qkv_heads[{dtype},qkv{(b, length, (h + 2 * hkv) * d)},heads={h}/{hkv},dims={dims},"
                f"{'traditional' if traditional else 'rotate-half'},offset={offset}]",
                "qkv_heads",
                (dtype,),
                _arrays(((b, length, (h + 2 * hkv) * d), dtype, -3, 3), ((d,), dtype, 0.5, 2), ((d,), dtype, 0.5, 2)),
                lambda aq, qkv, qw, kw, h=h, hkv=hkv, d=d, dims=dims, t=traditional, o=offset: aq.nn.qkv_heads(
                    qkv, h, hkv, d, q_weight=qw, k_weight=kw, eps=1e-5, rope_dims=dims, traditional=t, offset=o
                ),
                upcast=dtype in ("float16", "bfloat16"),
            )
        )
    for (shape, with_weight), dtype in itertools.product((((1, 1, 40), True), ((2, 3, 13), False)), FLOATS):
        specs: list[tuple[tuple[int, ...], str, float, float]] = [(shape, dtype, -3, 3), (shape, dtype, -3, 3)]
        if with_weight:
            specs.append(((shape[-1],), dtype, -2, 2))
        cases.append(
            Case(
                f"add_rms_norm[{dtype},x{shape},{'weight' if with_weight else 'no weight'}]",
                "add_rms_norm",
                (dtype,),
                _arrays(*specs),
                lambda aq, x, y, *w: aq.nn.add_rms_norm(x, y, w[0] if w else None, 1e-5),
                upcast=dtype in ("float16", "bfloat16"),
            )
        )
    for what, width, wd in (("qkv width", 40, 8), ("weight shape", 32, 4)):
        cases.append(
            Case(
                f"error:qkv_heads[{what}]",
                "qkv_heads",
                ("float32",),
                _arrays(((1, 1, width), "float32", -1, 1), ((wd,), "float32", -1, 1)),
                lambda aq, qkv, w: aq.nn.qkv_heads(qkv, 2, 1, 8, q_weight=w, k_weight=w, eps=1e-6, rope_dims=8),
                expect="raises",
                raises="ValueError",
                match="qkv_heads",
            )
        )
    cases.append(
        Case(
            "error:add_rms_norm[shapes differ]",
            "add_rms_norm",
            ("float32",),
            _arrays(((2, 8), "float32", -1, 1), ((2, 9), "float32", -1, 1)),
            lambda aq, x, y: aq.nn.add_rms_norm(x, y, None),
            expect="raises",
            raises="ValueError",
            match="add_rms_norm takes x and y",
        )
    )
    return cases
