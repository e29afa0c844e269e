"""JAX's 64-bit switch, read and never written: ``jax_enable_x64`` is process-wide, so the backend
declares the 64-bit dtypes as gaps while it is off instead of flipping it behind the program's back."""

from __future__ import annotations

from typing import Any

#: How to opt in, for error messages, the declared gaps and ``arrayq info``.
X64_HINT = (
    "jax runs with jax_enable_x64 off (its default); set the environment variable JAX_ENABLE_X64=1 "
    "before jax is imported (or call jax.config.update('jax_enable_x64', True) first) for 64-bit dtypes"
)
#: The dtypes jax narrows to 32 bits while the flag is off.
X64_DTYPES = ("float64", "int64", "uint64", "complex128")


def x64_enabled(jax: Any) -> bool:
    """Whether jax holds 64-bit dtypes now."""
    return bool(jax.config.read("jax_enable_x64"))


def gaps_without_x64() -> dict[str, str]:
    """The declared gaps while ``jax_enable_x64`` is off: each 64-bit dtype, with how to opt in."""
    return dict.fromkeys(X64_DTYPES, X64_HINT)
