"""The MLX backend's device policy.

MLX arrays do not belong to a device; MLX decides where an op runs when the op is created.
arrayq's rule: *creation functions given ``device=`` (or run inside
``arrayq.default_backend("mlx", device=...)``) run inside ``mx.stream(device)``; every other
op runs on MLX's default device* (``mx.default_device()``, set with ``mx.set_default_device``
or ``with mx.stream(...)``). So ``device_of`` names MLX's default device, where ops on the
array will run. Devices are ``"cpu"`` and, where MLX has a Metal or CUDA device, ``"gpu"``
(an ``mx.Device`` or ``mx.DeviceType`` is accepted too). float64 exists on the CPU only.

It is its own module, not part of the translation table, because it is one rule that every
creation op, the dtype check (float64) and the quantized strategy ask about.
"""

from __future__ import annotations

import contextlib
from typing import Any


class Devices:
    """The devices of one MLX backend: which exist, which one an op targets, and the stream
    a creation op runs in. ``owner`` names the backend in error messages."""

    def __init__(self, mx: Any, owner: Any) -> None:
        self.mx = mx
        self._owner = owner
        self.has_gpu = self._gpu_available()

    def _gpu_available(self) -> bool:
        for sub in ("metal", "cuda"):
            module = getattr(self.mx, sub, None)
            try:
                if module is not None and module.is_available():
                    return True
            except Exception:  # a broken driver means no GPU, not a broken backend
                pass
        return False

    def name(self, device: Any) -> str:
        """``"cpu"``/``"gpu"`` for a device argument (a string, ``mx.Device`` or ``mx.DeviceType``)."""
        mx = self.mx
        if isinstance(device, str):
            return device
        if isinstance(device, mx.Device):
            device = device.type
        if isinstance(device, mx.DeviceType):
            return "gpu" if device == mx.DeviceType.gpu else "cpu"
        raise ValueError(f"backend {self._owner.name!r} takes devices 'cpu' or 'gpu', got {device!r}")

    def targets_gpu(self, device: Any = None) -> bool:
        """Whether an op given ``device`` (None: MLX's default device) runs on the GPU."""
        if device is not None:
            return self.name(device) == "gpu"
        return self.mx.default_device().type == self.mx.DeviceType.gpu

    def listed(self) -> list[str]:
        """``["cpu"]``, plus ``"gpu"`` where MLX has one; MLX's current default device first."""
        out = ["cpu", "gpu"] if self.has_gpu else ["cpu"]
        if self.has_gpu and self.targets_gpu():
            out.reverse()
        return out

    def check(self, device: Any) -> None:
        mx = self.mx
        name = self.name(device) if isinstance(device, (str, mx.Device, mx.DeviceType)) else device
        if name not in self.listed():
            raise ValueError(f"backend {self._owner.name!r} has no device {device!r}; it has {self.listed()}")

    def stream(self, device: Any) -> contextlib.AbstractContextManager[Any]:
        """The context that makes a creation op run on ``device`` (None: MLX's default)."""
        if device is None:
            return contextlib.nullcontext()
        self.check(device)
        mx = self.mx
        return mx.stream(mx.gpu if self.name(device) == "gpu" else mx.cpu)
