"""Mutation check: plant known, realistic one-line bugs one at a time and assert the test
suite catches each.

Each mutation replaces one unique piece of source text in a copy of the checkout (the
checkout itself is never written), then runs the tests named for it there; the mutation
is "killed" when they fail, and the tests that failed then pass on the unmutated copy
(checked once at the end, all together). A mutation that survives means the suite went
blind where it used to see: the script lists it and exits 1. Run from the repository root:

    python tools/mutation_check.py            # all mutations (a few minutes; --jobs N at once)
    python tools/mutation_check.py -k gguf    # those whose name contains "gguf"
    python tools/mutation_check.py --list

Add a mutation whenever a review finds a bug the suite missed: the bug, the test that now
catches it, and this table keep each other honest (tests/test_mutation_check.py checks
that every mutation still applies to the source as it is).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFORMANCE_NUMPY = "tests/test_conformance.py::test_numpy_reference_passes_the_whole_suite"
HANDBUILT = "tests/test_quant_handbuilt.py"


@dataclasses.dataclass(frozen=True)
class Mutation:
    name: str
    path: str  # relative to the repository root
    old: str  # must occur exactly once in the file
    new: str
    tests: tuple[str, ...]  # pytest node ids or files that must fail
    rebuild: bool = False  # C sources: rebuild the native kernels in the copy first


MUTATIONS = (
    # validation must be arrayq's own, with its own exception type (issue: NumPy's own
    # errors stood in for missing checks)
    Mutation(
        "quantize: the K % group_size check removed",
        "arrayq/quant/__init__.py",
        "    if shape[-1] % group_size:\n",
        "    if False:\n",
        (CONFORMANCE_NUMPY,),
    ),
    Mutation(
        "gather_qmm: off-by-one in the expert index check",
        "arrayq/quant/__init__.py",
        "host.max() >= limit",
        "host.max() > limit",
        (CONFORMANCE_NUMPY,),
    ),
    Mutation(
        "QuantizedWeight: the scales' row count not checked",
        "arrayq/quant/__init__.py",
        "if cols % group_size or ss != expected:",
        "if cols % group_size or ss[-1] != expected[-1]:",
        (CONFORMANCE_NUMPY,),
    ),
    # the NumPy backend's fast paths, against the independent conformance reference
    Mutation(
        "NumPy fast path: biases subtracted when dequantizing rows (transpose=False)",
        "backends/arrayq_numpy/_fastpath.py",
        "    grouped += biases[:, :, None]\n",
        "    grouped -= biases[:, :, None]\n",
        (CONFORMANCE_NUMPY,),
    ),
    Mutation(
        "NumPy rms_norm: eps outside the square root",
        "backends/arrayq_numpy/__init__.py",
        "np.sqrt(np.vecdot(x, x)[..., None] / x.shape[-1] + eps)",
        "(np.sqrt(np.vecdot(x, x)[..., None] / x.shape[-1]) + eps)",
        (CONFORMANCE_NUMPY, "tests/test_nn.py::test_norms"),
    ),
    Mutation(
        "NumPy swiglu kernel: gate and up swapped",
        "backends/arrayq_numpy/_rowops.py",
        "_native._kernels.swiglu(g, u, out.reshape(g.shape))",
        "_native._kernels.swiglu(u, g, out.reshape(g.shape))",
        ("tests/test_rowops.py",),
    ),
    Mutation(
        "NumPy rope kernel: the sine table read as the cosine",
        "backends/arrayq_numpy/_rowops.py",
        "_native._kernels.rope(x4, cos, sin, out, int(dims), bool(traditional))",
        "_native._kernels.rope(x4, sin, cos, out, int(dims), bool(traditional))",
        ("tests/test_rowops.py",),
    ),
    Mutation(
        "NumPy qkv_heads kernel: q's and k's norm weights swapped",
        "backends/arrayq_numpy/_rowops.py",
        "_native._kernels.qkv_heads(rows, *weights, cos, sin, q, k, v, eps, int(dims), bool(traditional))",
        "_native._kernels.qkv_heads(rows, *list(weights)[::-1], cos, sin, q, k, v, eps, int(dims), bool(traditional))",
        ("tests/test_fused_ops.py",),
    ),
    Mutation(
        "NumPy add_rms_norm kernel: x added to itself",
        "backends/arrayq_numpy/_rowops.py",
        "_native._kernels.add_rms_norm(xs, ys, w, total, out, eps)",
        "_native._kernels.add_rms_norm(xs, xs, w, total, out, eps)",
        ("tests/test_fused_ops.py",),
    ),
    Mutation(
        "NumPy attention on the pool: a part stops one (batch, kv head) group short",
        "backends/arrayq_numpy/csrc/attention.c",
        "groups * part / parts, groups * (part + 1) / parts)",
        "groups * part / parts, groups * (part + 1) / parts - (part + 1 < parts))",
        ("tests/test_native_kernels.py::test_attention_kernel_is_the_same_on_any_number_of_threads",),
        rebuild=True,
    ),
    Mutation(
        "NumPy repacked kernel: reports every x as finite",
        "backends/arrayq_numpy/csrc/repack.c",
        "return finite ? 0 : 1;",
        "return 0;",
        ("tests/test_native_repacked.py::test_the_kernel_reports_whether_x_is_finite",),
        rebuild=True,
    ),
    Mutation(
        "NumPy dequantize: scale * q not rounded to the scales' dtype (one rounding, not MLX's two)",
        "backends/arrayq_numpy/_fastpath.py",
        "if narrow != np.float32:  # (as the reference's _round_narrow",
        "if False:  # (as the reference's _round_narrow",
        ("tests/test_numpy_dequantize.py::test_matches_the_reference_bit_for_bit",),
    ),
    # norms: inputs and tolerances a misplaced eps or a swapped weight/bias cannot hide in
    Mutation(
        "nn.LayerNorm: eps outside the square root",
        "arrayq/_functional.py",
        "aq.sqrt(aq.add(var, eps))",
        "aq.add(aq.sqrt(var), eps)",
        ("tests/test_nn.py::test_norms",),
    ),
    Mutation(
        "nn.LayerNorm: the weight added instead of the bias",
        "arrayq/_functional.py",
        "out = aq.add(out, _narrow(bias, aq.dtype(out)))",
        "out = aq.add(out, _narrow(weight, aq.dtype(out)))",
        ("tests/test_nn.py::test_norms",),
    ),
    Mutation(
        "rms_norm reference: mean over D - 1",
        "arrayq/_functional.py",
        "keepdims=True), int(xw.shape[-1]))",
        "keepdims=True), int(xw.shape[-1]) - 1)",
        ("tests/test_nn.py::test_norms",),
    ),
    # GGUF names: checked against gguf-py's own map, not against the table under test
    Mutation(
        "GGUF: attn_norm and ffn_norm swapped",
        "arrayq/models/qwen3.py",
        '"ffn_norm": "post_attention_layernorm",',
        '"ffn_norm": "input_layernorm", "attn_norm": "post_attention_layernorm",',
        ("tests/test_gguf.py::test_tensor_names_match_gguf_py",),
    ),
    # which path runs (the results are equal, the speed is not)
    Mutation(
        "MLX CPU: dequantize-then-matmul from 1 row",
        "backends/arrayq_mlx/_quantized.py",
        "CPU_DEQUANTIZE_MIN_ROWS = 128",
        "CPU_DEQUANTIZE_MIN_ROWS = 1",
        ("tests/test_mlx_backend.py::test_cpu_dequantize_threshold",),
    ),
    Mutation(
        "NumPy: per-matrix path for batched weights of any size",
        "backends/arrayq_numpy/__init__.py",
        "PER_MATRIX_MIN_WEIGHTS = 4096",
        "PER_MATRIX_MIN_WEIGHTS = 1",
        ("tests/test_numpy_quantized.py::test_per_matrix_threshold_counts_weights",),
    ),
    Mutation(
        "NumPy: GGUF's symmetric weights repacked with their biases",
        "backends/arrayq_numpy/_native.py",
        "return bool(np.array_equal(biases, scales * scales.dtype.type(-(1 << (bits - 1)))))",
        "return False",
        ("tests/test_native_repacked.py::test_symmetric_weights_read_as_many_bytes_as_gguf_blocks",),
    ),
    Mutation(
        "NumPy: native kernels never chosen",
        "backends/arrayq_numpy/__init__.py",
        "if finite and _native.supports(x2d, packed, transpose, group_size):",
        "if False:",
        ("tests/test_numpy_quantized.py::test_fast_path_routing",),
    ),
    # dispatch: NumPy gives way wherever its array stands
    Mutation(
        "dispatch: only the first two arguments decide the backend",
        "arrayq/_dispatch.py",
        "    for x in xs:\n        b = backend_of(x)",
        "    for x in xs[:2]:\n        b = backend_of(x)",
        ("tests/test_dispatch.py",),
    ),
    Mutation(
        "dispatch: NumPy does not give way when it comes second",
        "arrayq/_dispatch.py",
        "elif b.gives_way and not chosen.gives_way:",
        "elif b.gives_way and not chosen.gives_way and False:",
        ("tests/test_dispatch.py",),
    ),
    # the formats without MLX as the answer key: hand-built cases (tests/test_quant_handbuilt.py)
    Mutation(
        "affine: codes round half-up instead of half-to-even",
        "arrayq/quant/_formats.py",
        "q = xp.round(div(sub(wg, bias), scale))",
        "q = xp.floor(xp.add(div(sub(wg, bias), scale), 0.5))",
        (HANDBUILT,),
    ),
    Mutation(
        "affine: the scale's sign ignores which of min and max is larger",
        "arrayq/quant/_formats.py",
        "scale = xp.where(mask, scale, xp.negative(scale))",
        "scale = xp.where(mask, scale, scale)",
        (HANDBUILT,),
    ),
    Mutation(
        "mx: the scale not rounded to the weight dtype",
        "arrayq/quant/_formats.py",
        "s = _round_narrow(xp, xp.divide(amax, maxval), dtype)",
        "s = xp.divide(amax, maxval)",
        (HANDBUILT,),
    ),
    Mutation(
        "nvfp4: elements divided by the scale before its E4M3 rounding",
        "arrayq/quant/_formats.py",
        "sd = _from_e4m3(xp, scale_codes)",
        "sd = s",
        (HANDBUILT,),
    ),
    Mutation(
        "nvfp4: distances in the weight dtype instead of float32",
        "arrayq/quant/_formats.py",
        'codes = _to_fp4(xp, v, xp.float32 if mode == "nvfp4" else dtype)',
        "codes = _to_fp4(xp, v, dtype)",
        (HANDBUILT,),
    ),
    Mutation(
        "fp4: ties go to the larger code",
        "arrayq/quant/_codecs.py",
        "better = xp.less(d, best_d)",
        "better = xp.less_equal(d, best_d)",
        (HANDBUILT,),
    ),
    Mutation(
        "packing: off-by-one shift for codes straddling two words",
        "arrayq/quant/_packing.py",
        "hi = xp.bitwise_right_shift(v, _u32(xp, 32 - sh))",
        "hi = xp.bitwise_right_shift(v, _u32(xp, 31 - sh))",
        (HANDBUILT,),
    ),
    # checkpoints: hostile files (tests/test_refusals.py)
    Mutation(
        "checkpoint: names leaving the folder followed",
        "arrayq/models/_files.py",
        "    if os.path.commonpath([root, real]) != root:\n",
        "    if False:\n",
        ("tests/test_refusals.py",),
    ),
    Mutation(
        "config: NaN passes the float checks",
        "arrayq/models/_loader.py",
        "if not ok or not math.isfinite(value) or value <= low:",
        "if not ok or value <= low:",
        ("tests/test_refusals.py",),
    ),
    # take: the frontend's bounds check (MLX reads past the end without it)
    Mutation(
        "take: indices past the end not refused by arrayq",
        "arrayq/_manipulation.py",
        "    if lo < -size or hi >= size:\n",
        "    if False:\n",
        (CONFORMANCE_NUMPY,),
    ),
    # erf: the contract's formula and the NumPy backend's blocks, against math.erf
    Mutation(
        "erf: float16/bfloat16 computed in their own dtype",
        "arrayq/backend/_erf.py",
        "    narrow = dtype in (dt.float16, dt.bfloat16)\n",
        "    narrow = False\n",
        ("tests/test_ops_erf.py::test_every_narrow_value",),
    ),
    Mutation(
        "erf: a NumPy block one element short",
        "backends/arrayq_numpy/__init__.py",
        "out[start : start + ERF_BLOCK] = super().erf(flat[start : start + ERF_BLOCK])",
        "out[start : start + ERF_BLOCK - 1] = super().erf(flat[start : start + ERF_BLOCK - 1])",
        ("tests/test_ops_erf.py",),
    ),
    # nn.quantize: the predicate's per-layer arguments and the containers it rebuilds
    Mutation(
        "nn.quantize: a predicate's dict of arguments ignored",
        "arrayq/_quantize_model.py",
        "            kwargs.update(chosen)\n",
        "            pass\n",
        ("tests/test_nn_quantize.py",),
    ),
    Mutation(
        "nn.quantize: tuples not looked into",
        "arrayq/_quantize_model.py",
        "    if isinstance(o, (list, tuple)):\n",
        "    if isinstance(o, list):\n",
        ("tests/test_nn_quantize.py",),
    ),
    # the NumPy backend's replay forms of its native ops (a recorded plan's kernel calls)
    Mutation(
        "NumPy bound prefix_attention: the key count unchecked",
        "backends/arrayq_numpy/csrc/bound.c",
        "if (n < self->low || n > self->kv_shape[2] || self->q_shape[2] > max_rows",
        "if (self->q_shape[2] > max_rows",
        ("tests/test_native_forms.py::test_attention_key_count_outside_the_range_takes_the_method",),
        rebuild=True,
    ),
    Mutation(
        "NumPy bound quantized_matmul: blind to the thread's activations",
        "backends/arrayq_numpy/csrc/bound.c",
        "int plain = int8 > 0 && repacked == self->cache",
        "int plain = int8 >= 0 && repacked == self->cache",
        ("tests/test_native_forms.py::test_quantized_matmul_guards",),
        rebuild=True,
    ),
    Mutation(
        "NumPy bound swiglu_halves: the halves swapped",
        "backends/arrayq_numpy/csrc/bound.c",
        "swiglu_rows(in[0].buf, width, (const float *)in[0].buf + self->d, width,",
        "swiglu_rows((const float *)in[0].buf + self->d, width, in[0].buf, width,",
        ("tests/test_native_forms.py::test_form_replays_the_method_bit_for_bit",),
        rebuild=True,
    ),
    Mutation(
        "NumPy bound quantized_matmul: blind to non-finite activations",
        "backends/arrayq_numpy/csrc/bound.c",
        "if (status > 0) { /* NaN or inf in x */",
        "if (status > 1) { /* NaN or inf in x */",
        ("tests/test_native_forms.py::test_quantized_matmul_guards",),
        rebuild=True,
    ),
    # BERT and the encoder's attention: against the float64 NumPy BERT of tests/test_bert.py
    Mutation(
        "BERT: the tanh GELU for hidden_act 'gelu'",
        "arrayq/models/bert.py",
        'ACTIVATIONS = {"gelu": "none",',
        'ACTIVATIONS = {"gelu": "tanh",',
        ("tests/test_bert.py::test_matches_the_float64_reference",),
    ),
    Mutation(
        "BERT: mean pooling over the padding too",
        "arrayq/models/bert.py",
        "total = aq.sum(aq.multiply(h, keep), axis=1)",
        "total = aq.sum(h, axis=1)",
        ("tests/test_bert.py::test_matches_the_float64_reference",),
    ),
    Mutation(
        "padding_mask: nothing masked",
        "arrayq/_functional.py",
        "pad = aq.equal(attention_mask, 0)",
        "pad = aq.equal(attention_mask, 2)",
        ("tests/test_nn.py::test_padding_mask",),
    ),
    Mutation(
        "Attention: an encoder made causal",
        "arrayq/nn.py",
        "if self.causal and length > 1:",
        "if length > 1:",
        ("tests/test_nn.py::test_attention_without_rope_and_a_padding_mask",),
    ),
    Mutation(
        "extract_zip: member paths not checked",
        "arrayq/models/_files.py",
        "targets.append((info, member(folder, name, archive)))",
        "targets.append((info, Path(folder) / name))",
        ("tests/test_minilm.py::test_extract_zip_refuses",),
    ),
    # quantization methods: the never-worse-than-rtn guarantees and GPTQ's error feedback
    Mutation(
        "quantize method=mse: a group takes the search's result even where rtn's is better",
        "arrayq/quant/_search.py",
        "group_error(chunk, q1, s1, b1, dtype) < group_error(chunk, q0, s0, b0, dtype)",
        "group_error(chunk, q1, s1, b1, dtype) < 2 * group_error(chunk, q0, s0, b0, dtype)",
        ("tests/test_quant_methods.py::test_mse_is_never_worse_than_rtn_on_any_group",),
    ),
    Mutation(
        "quantize method=gptq: no error fed forward to later groups",
        "arrayq/quant/_gptq.py",
        "        work[:, c1:] -= err @ u[c0:c1, c1:]\n",
        "        pass\n",
        ("tests/test_quant_methods.py::test_gptq_is_never_worse_than_rtn_per_row_on_its_calibration",),
    ),
    Mutation(
        "quantize method=gptq with float_calibration: the float targets ignored (plain GPTQ on drifted inputs)",
        "arrayq/quant/_gptq.py",
        "    given, w = w, (w if x_float is None else float_target(w, x, x_float, h, damping))\n",
        "    given = w\n",
        ("tests/test_quant_methods.py::test_float_targets_make_up_for_drifted_inputs_on_held_out_samples",),
    ),
    Mutation(
        "nn.distill_quantized loss='similarity': dot products instead of cosines",
        "arrayq/_distill.py",
        "    unit = aq.divide(a, aq.maximum(aq.linalg.vector_norm(a, axis=-1, keepdims=True), 1e-30))\n",
        "    unit = a\n",
        ("tests/test_distill.py::test_similarity_loss_and_weights_match_a_hand_computation",),
    ),
    Mutation(
        "nn.distill_quantized with validation: the last check kept, not the best",
        "arrayq/_distill.py",
        "            if now < best_value:\n",
        "            if True:\n",
        ("tests/test_distill.py::test_validation_keeps_the_best_checked_parameters",),
    ),
    Mutation(
        "distill_quantized(learn_rounding=True): anchors at the float weight (offsets 0 lose the start codes)",
        "arrayq/_rounding.py",
        "    u = np.where(np.abs(r) <= 0.5, q + np.clip(r, -LIMIT, LIMIT), q + np.sign(r) * DEVIATED)\n",
        "    u = x\n",
        (
            "tests/test_distill.py::"
            "test_zero_offsets_give_the_codes_back_and_full_ones_move_one_step_towards_the_float_weight",
        ),
    ),
    Mutation(
        "distill_quantized(learn_rounding=True): no straight-through gradient (the codes never move)",
        "arrayq/_rounding.py",
        "aq.add(code, aq.subtract(v, frozen))",
        "aq.add(code, aq.multiply(aq.subtract(v, frozen), 0.0))",
        (
            "tests/test_distill.py::test_learned_rounding_lowers_the_objective_below_plain_distillation",
            "tests/test_distill.py::test_offsets_gradient_is_the_straight_through_chain_rule",
        ),
    ),
    Mutation(
        "nn.equalize_attention: v_proj left unscaled (the model's function changes)",
        "arrayq/_equalize.py",
        "    inv = 1.0 / s\n",
        "    inv = np.ones_like(s)\n",
        ("tests/test_equalize.py::test_keeps_the_function_and_scales_the_weights",),
    ),
    Mutation(
        "nn.reround_quantized: codes chosen for GPTQ's own refitted grid, then put on the layer's grid",
        "arrayq/_distill.py",
        "stored, None, damp, grid=True)",
        "stored, None, damp, grid=False)",
        ("tests/test_reround.py::test_keeps_the_grid_and_never_raises_the_objective",),
    ),
    Mutation(
        "nn.quantize_sequential: every layer calibrated on the float model's inputs",
        "arrayq/_quantize_sequential.py",
        "x, xf = np.concatenate(sinks[key]), np.concatenate(float_sinks[key])",
        "x, xf = np.concatenate(float_sinks[key]), np.concatenate(float_sinks[key])",
        ("tests/test_quantize_sequential.py::test_layers_are_quantized_in_order_on_the_partly_quantized_inputs",),
    ),
    # serving: the batch's padded KV cache and the NumPy kernel's reading of padding masks
    Mutation(
        "serving BatchCache: a leaving row's keys left in place (the last row not moved in)",
        "arrayq/serving/_batch.py",
        "b[row : row + 1, :, :length] = b[last : last + 1, :, :length]",
        "b[row : row + 1, :, :length] = b[row : row + 1, :, :length]",
        ("tests/test_serving.py::test_a_row_leaving_the_batch_cache_leaves_the_others_intact",),
    ),
    Mutation(
        "serving BatchCache: a joining row keeps what an earlier, longer sequence left past its length",
        "arrayq/serving/_batch.py",
        "self._zero(row, length, self._written[row])",
        "self._zero(row, length, 0)",
        ("tests/test_serving.py::test_the_batch_cache_is_zero_past_each_rows_length",),
    ),
    Mutation(
        "serving BatchCache: the hole a leaving row makes keeps its rest past the moved row's length",
        "arrayq/serving/_batch.py",
        "self._zero(row, length, before)",
        "self._zero(row, length, length)",
        ("tests/test_serving.py::test_the_batch_cache_is_zero_past_each_rows_length",),
    ),
    Mutation(
        "serving prefill: a prompt prefilled together keeps what an earlier, longer sequence left past it",
        "arrayq/serving/_batch.py",
        "cache._zero(first + i, length, cache._written[first + i])",
        "cache._zero(first + i, length, length)",
        ("tests/test_serving_prefill.py::test_a_row_a_longer_sequence_left_is_zero_past_the_new_prompt",),
    ),
    Mutation(
        "serving prefill: a shorter prompt's logits read at the padded end, not its last token",
        "arrayq/serving/_batch.py",
        "aq.stack([h[i, length - 1] for i, length in enumerate(lengths)])",
        "aq.stack([h[i, -1] for i, length in enumerate(lengths)])",
        ("tests/test_serving_prefill.py::test_prompts_prefilled_together_are_each_prompts_own_forward",),
    ),
    Mutation(
        "serving stats: the finished sequences' removal left out of join_seconds",
        "arrayq/serving/_engine.py",
        'self._seconds["join"] += took',
        'self._seconds["join"] += 0',
        ("tests/test_serving.py::test_join_seconds_count_the_finished_sequences_leaving",),
    ),
    Mutation(
        "compile: cache_info iterates the plans' dict that another thread may grow",
        "arrayq/_compile.py",
        "entries = list(self._cache.values())",
        "entries = self._cache.values()",
        ("tests/test_serving.py::test_stats_read_while_the_step_records_a_plan",),
    ),
    Mutation(
        "NumPy row ops: a misaligned C-contiguous array handed to the kernel",
        "backends/arrayq_numpy/_rowops.py",
        "if rows.flags.carray:",
        "if rows.flags.c_contiguous:",
        ("tests/test_native_forms.py::test_a_misaligned_array_gives_the_aligned_result",),
    ),
    Mutation(
        "serving: one prompt prefilled a step (requests arriving together join one a step)",
        "arrayq/serving/_engine.py",
        "if spent and spent + part > self.limits.prefill_chunk:",
        "if spent:",
        ("tests/test_serving.py::test_requests_that_arrive_together_join_the_batch_together",),
    ),
    Mutation(
        "NumPy attention: the remembered key lengths of a mask written in place",
        "backends/arrayq_numpy/_native.py",
        "if last is not None and last[0] == key and last[1] == data:",
        "if last is not None and last[0] == key:",
        ("tests/test_native_batch.py::test_remembered_key_lengths_follow_the_mask_bytes",),
    ),
    Mutation(
        "NumPy attention: any negative additive mask read as padding",
        "backends/arrayq_numpy/_native.py",
        "rows <= np.finfo(np.float32).min",
        "rows < 0",
        ("tests/test_native_kernels.py::test_a_padding_mask_takes_the_kernel_and_other_masks_do_not",),
    ),
    Mutation(
        "NumPy replay form: the batched step's attention blind to its padding mask",
        "backends/arrayq_numpy/_native_forms.py",
        "kernel(index, q, k, v, out, scale, False, lengths)",
        "kernel(index, q, k, v, out, scale, False)",
        ("tests/test_native_forms.py::test_form_replays_the_method_bit_for_bit",),
    ),
    Mutation(
        "NumPy attention: float16 values read as if they were the float32 kernel's",
        "backends/arrayq_numpy/csrc/kernels_simd.inc",
        "    if (!half) return NAME(load_f)((const float *)p + i);",
        "    if (!half || i % 64 == 0) return NAME(load_f)((const float *)p + i);",
        ("tests/test_attention_float16.py::test_float16_kernel_is_the_float32_kernel_on_widened_keys",),
        rebuild=True,
    ),
    Mutation(
        "NumPy float32 -> float16: F16C rounding toward zero",
        "backends/arrayq_numpy/csrc/rowops.c",
        "_mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT)",
        "_mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_ZERO)",
        ("tests/test_attention_float16.py::test_float16_conversion_is_numpys",),
        rebuild=True,
    ),
    Mutation(
        "NumPy attention: float16 keys of any head size handed to the kernel",
        "backends/arrayq_numpy/_native.py",
        "and k.shape[-1] % 16 == 0 and v.shape[-1] % 16 == 0",
        "",
        ("tests/test_attention_float16.py::test_nn_attention_widens_float16_keys_the_kernel_declines",),
    ),
    Mutation(
        "arrayq.nn: float16 keys the backend declines handed to the reference unwidened",
        "arrayq/_functional.py",
        "    if out is NotImplemented and narrow:\n        k, v = _widened_kv(backend, q, k, v)",
        "    if False:\n        k, v = _widened_kv(backend, q, k, v)",
        ("tests/test_attention_float16.py::test_nn_attention_widens_float16_keys_the_kernel_declines",),
    ),
)


def _copy_checkout(dest: pathlib.Path) -> None:
    """The source tree: the files git tracks or would track (so nothing it ignores, such as
    caches, virtual environments or build output, is copied once per mutation), plus the
    native kernels built in place. Outside a git checkout, everything but the caches."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, capture_output=True, check=True,
        ).stdout.decode().split("\0")  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        ignore = shutil.ignore_patterns(".git", "__pycache__", ".pytest_cache", ".hypothesis", "site", "build", "dist")
        shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)
        return
    built = [str(p.relative_to(ROOT)) for p in (ROOT / "backends").rglob("*.so")]
    for name in [n for n in listed if n] + built:
        source, target = ROOT / name, dest / name
        if source.is_file():  # (a file git lists may be deleted in the working tree)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)


def _run_tests(tree: pathlib.Path, tests: tuple[str, ...], timeout: float) -> tuple[int, str]:
    env = dict(os.environ)
    # the copy's packages first, before any installed (or editable) arrayq
    paths = [str(tree), str(tree / "backends"), str(tree / "examples" / "arrayq-strict")]
    env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in [env.get("PYTHONPATH")] if p])
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout:.0f} s"
    return proc.returncode, proc.stdout + proc.stderr


def _failed(out: str) -> list[str]:
    """The node ids (or files, for a collection error) that pytest's summary names as failed."""
    return [
        line.split(" ", 1)[1].split(" - ")[0] for line in out.splitlines() if line.startswith(("FAILED ", "ERROR "))
    ]


def _apply(tree: pathlib.Path, m: Mutation) -> None:
    path = tree / m.path
    text = path.read_text()
    if text.count(m.old) != 1:
        raise SystemExit(f"mutation {m.name!r}: {m.path} holds its text {text.count(m.old)} times, not once")
    path.write_text(text.replace(m.old, m.new))
    if m.rebuild:  # at -O0: the copy's kernels are judged, not timed (kernels.c takes minutes at -O3)
        env = {**os.environ, "CFLAGS": "-O0"}
        subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=tree, env=env, check=True)


def applies(m: Mutation, root: pathlib.Path = ROOT) -> bool:
    """Whether the mutation's text occurs exactly once in the source as it is."""
    return (root / m.path).read_text().count(m.old) == 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", default="", help="only mutations whose name contains this")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per mutation's test run")
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="mutations judged at once (default: one per CPU)"
    )
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if args.k.lower() in m.name.lower()]
    if args.list or not chosen:
        for m in MUTATIONS:
            print(f"{m.name}  [{m.path}]")
        return 0 if chosen else 2
    survived, killers = [], {}
    with tempfile.TemporaryDirectory(prefix="arrayq-mutation-") as tmp:
        base = pathlib.Path(tmp) / "base"
        _copy_checkout(base)

        def judge(i: int, m: Mutation) -> tuple[int, float, list[str]]:
            tree = pathlib.Path(tmp) / f"m{i}"
            shutil.copytree(base, tree, symlinks=True)
            try:
                _apply(tree, m)
                start = time.perf_counter()
                code, out = _run_tests(tree, m.tests, args.timeout)
                return code, time.perf_counter() - start, _failed(out) or list(m.tests)
            finally:
                shutil.rmtree(tree)

        # each mutation's tests run in a process of their own: as many at once as --jobs
        with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
            for m, (code, seconds, failed) in zip(chosen, pool.map(judge, range(len(chosen)), chosen)):
                verdict = "killed" if code != 0 else "SURVIVED"
                by = f"  (by {failed[0]})" if code != 0 else ""
                print(f"{verdict:<9} {seconds:6.1f} s  {m.name}{by}", flush=True)
                if code == 0:
                    survived.append(m)
                else:
                    killers[m.name] = failed
        # a kill counts only where the tests that failed pass on the unmutated copy: run
        # those (not every named test: the suite runs them all anyway) once, together
        confirm = tuple(dict.fromkeys(t for failed in killers.values() for t in failed))
        code, out = _run_tests(base, confirm, args.timeout) if confirm else (0, "")
        if code != 0:
            broken = set(_failed(out)) or set(confirm)
            names = [name for name, failed in killers.items() if broken & set(failed)] or list(killers)
            print(f"the tests that killed {names} fail unmutated too, so they prove nothing:\n{out[-1500:]}")
            return 1
    print(f"{len(chosen) - len(survived)} of {len(chosen)} mutations killed")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
