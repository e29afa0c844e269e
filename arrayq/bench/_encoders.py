"""arrayq's own sentence encoder as an :class:`~arrayq.bench._quality.Encoder`: the model
``arrayq.models.load`` builds from a checkpoint folder (the BERT of all-MiniLM-L6-v2), its
Linear layers quantized by ``arrayq.nn.quantize(..., method=...)`` and run by arrayq's
quantized kernels on the chosen backend. So the measurement covers the whole path a user
takes, kernels included."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


class _Recording:
    """A Linear that keeps its inputs (as NumPy) in ``sink[path]`` and computes as before."""

    def __init__(self, layer: Any, path: str, sink: dict[str, list[np.ndarray]]) -> None:
        self.layer, self.path, self.sink = layer, path, sink

    def __call__(self, x: Any) -> Any:
        import arrayq as aq

        self.sink.setdefault(self.path, []).append(np.asarray(aq.to_numpy(aq.astype(x, "float32"))))
        return self.layer(x)


class ArrayqEncoder:
    """``models.load(folder)`` on ``backend`` with ``models.load_tokenizer(folder)``; weight
    names are the model's layer paths (``layers.0.attention.q_proj``, ...), and every
    ``nn.Linear`` is quantized (the embedding tables stay dense)."""

    def __init__(self, folder: str | Path, backend: str = "numpy") -> None:
        import arrayq as aq
        from arrayq import models

        self.backend = aq.get_backend(backend)
        self.model = models.load(folder, backend=self.backend)
        self.tokenizer = models.load_tokenizer(folder)

    def _run(self, model: Any, texts: Sequence[str]) -> np.ndarray:
        import arrayq as aq

        batch = self.tokenizer(list(texts))
        args = (aq.to_backend(a, self.backend) for a in (batch.ids, batch.attention_mask, batch.token_type_ids))
        return np.asarray(aq.to_numpy(aq.astype(model(*args), "float32")), np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._run(self.model, texts)

    def linear_inputs(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        from arrayq import nn
        from arrayq._quantize_model import _rebuilt

        sink: dict[str, list[np.ndarray]] = {}

        def record(path: str, layer: Any) -> Any:
            return _Recording(layer, path, sink) if isinstance(layer, nn.Linear) else layer

        self._run(_rebuilt(self.model, "", record), texts)
        real = self.tokenizer(list(texts)).attention_mask.astype(bool)
        return {path: np.concatenate(xs)[real] for path, xs in sink.items()}

    def sequential(self, bits: int, group_size: int, texts: Sequence[str]) -> Callable[[Sequence[str]], np.ndarray]:
        from arrayq import nn

        mask = self.tokenizer(list(texts)).attention_mask  # the real tokens calibrate, not the padding
        model = nn.quantize_sequential(
            self.model, lambda m: self._run(m, texts), bits=bits, group_size=group_size, mask=mask
        )
        return lambda texts: self._run(model, texts)

    def quantized(
        self, bits: int, group_size: int, method: str, calibration: Mapping[str, np.ndarray] | None = None
    ) -> Callable[[Sequence[str]], np.ndarray]:
        from arrayq import nn

        def predicate(path: str, layer: Any) -> Any:
            if not isinstance(layer, nn.Linear):
                return False
            if method == "gptq" and calibration is not None:
                return {"method": method, "calibration": calibration[path]}
            return {"method": method}

        model = nn.quantize(self.model, bits=bits, group_size=group_size, predicate=predicate)
        return lambda texts: self._run(model, texts)
