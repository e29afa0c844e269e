"""The array API's inspection utilities: ``arrayq.__array_namespace_info__()``.

arrayq is one namespace over several backends, so the answers are those of a backend: the
default backend (``arrayq.default_backend`` / ``set_default_backend`` / ``ARRAYQ_BACKEND``)
at the moment ``__array_namespace_info__()`` is called, which is where creation functions
put new arrays. Dtypes are arrayq's :class:`arrayq.DType` objects (``arrayq.float32``...),
which compare equal to the backend's own dtypes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _dtypes as dt
from ._dispatch import current_backend

if TYPE_CHECKING:
    from .backend import Backend

#: The dtypes the standard names (arrayq's float16 and bfloat16 are extensions).
STANDARD_DTYPES = tuple(d for d in dt.ALL_DTYPES if d.name not in ("float16", "bfloat16"))
#: The standard's capabilities, each True unless the backend declares it a gap.
CAPABILITIES = ("boolean indexing", "data-dependent shapes")


class ArrayNamespaceInfo:
    """The inspection namespace of one backend (what ``__array_namespace_info__()`` returns)."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def __repr__(self) -> str:
        return f"<arrayq namespace info for backend {self._backend.name!r}>"

    def _device(self, device: Any) -> Any:
        if device is not None:
            self._backend.check_device(device)
        return device

    def capabilities(self) -> dict[str, bool]:
        """``{"boolean indexing": bool, "data-dependent shapes": bool}``: False where the
        backend declares the gap (MLX: both, its graphs have static shapes)."""
        gaps = self._backend.declared_gaps
        return {name: name not in gaps for name in CAPABILITIES}

    def default_device(self) -> Any:
        """The device creation functions use when given none (the first of :meth:`devices`)."""
        return self._backend.devices()[0]

    def devices(self) -> list[Any]:
        """The devices the backend can put arrays on (``"cpu"``, and ``"gpu"`` on MLX with a GPU)."""
        return list(self._backend.devices())

    def default_dtypes(self, *, device: Any = None) -> dict[str, dt.DType]:
        """``{"real floating", "complex floating", "integral", "indexing"}`` -> dtype: the
        backend's default float, the complex dtype of that precision, and its default
        integer (for values and indices). ValueError for a device the backend lacks."""
        self._device(device)
        b = self._backend
        return {
            "real floating": b.default_float,
            "complex floating": b.default_complex,
            "integral": b.default_int,
            "indexing": b.default_int,
        }

    def dtypes(self, *, device: Any = None, kind: str | tuple[str, ...] | None = None) -> dict[str, dt.DType]:
        """``{name: dtype}`` of the standard's dtypes the backend has on ``device`` (None:
        the default device), optionally only those of ``kind`` (a kind name such as
        "real floating" or "integral", or a tuple of them; ValueError for an unknown one)."""
        gaps = self._backend.gaps(self._device(device))
        return {d.name: d for d in STANDARD_DTYPES if d.name not in gaps and (kind is None or dt.isdtype(d, kind))}


def __array_namespace_info__() -> ArrayNamespaceInfo:
    """The array API's inspection namespace for the current default backend: its
    ``capabilities()``, ``default_device()``, ``devices()``, ``default_dtypes(device=)``
    and ``dtypes(device=, kind=)``."""
    return ArrayNamespaceInfo(current_backend())
