"""Test-only backends: NumPy underneath, but each with its own ndarray subclass, so that
dispatch can tell their arrays apart from plain NumPy arrays and from each other."""

from __future__ import annotations

import numpy as np

from arrayq_numpy import NumPyBackend


def make_backend_class(tag: str, gives_way: bool = False) -> type:
    array_type = type(f"{tag}Array", (np.ndarray,), {})

    class TaggedBackend(NumPyBackend):
        library_module = None
        array_cls = array_type
        calls: list

        def __init__(self) -> None:
            super().__init__()
            self.calls = []

        def is_array(self, x):
            return isinstance(x, array_type)

        def from_numpy(self, a, device=None):
            return np.asarray(a).view(array_type)

        def binary(self, op, x1, x2):
            self.calls.append((op, type(x1), type(x2)))
            return self.from_numpy(super().binary(op, x1, x2))

        def full(self, shape, fill_value, dtype, device):
            return self.from_numpy(super().full(shape, fill_value, dtype, device))

    TaggedBackend.gives_way = gives_way
    TaggedBackend.__name__ = f"{tag}Backend"
    return TaggedBackend
