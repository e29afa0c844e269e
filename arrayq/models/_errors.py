"""The one error type of checkpoint loading."""

from __future__ import annotations

import os

from ..errors import ArrayqError


class CheckpointError(ArrayqError, ValueError):
    """A checkpoint that cannot be loaded as it is: a missing or unreadable file, a missing,
    unexpected or malformed tensor (wrong shape or dtype), a truncated or corrupted
    safetensors or GGUF file, an unknown quantization mode, or a config that disagrees
    with the weights.

    ``path`` is the file at fault and ``tensor`` the tensor's name (None when the fault is
    not one tensor's); both also appear in the message."""

    def __init__(self, path: str | os.PathLike, message: str, tensor: str | None = None):
        self.path = os.fspath(path)
        self.tensor = tensor
        where = self.path if tensor is None else f"{self.path}: tensor {tensor!r}"
        super().__init__(f"{where}: {message}")
