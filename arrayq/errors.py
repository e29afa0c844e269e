"""Every exception a user can trigger through arrayq. Backends raise these same types,
so code that catches them works whatever backend runs it."""


class ArrayqError(Exception):
    """Base class of arrayq's own errors."""


class BackendMismatchError(ArrayqError, TypeError):
    """Arrays of two different (non-NumPy) backends were given to one op."""


class BackendUnavailableError(ArrayqError, RuntimeError):
    """A backend was asked for whose library is not installed or failed to load."""


class UnknownBackendError(ArrayqError, KeyError):
    """A backend name that no entry point or ``register_backend`` call provides."""

    def __str__(self) -> str:  # KeyError would show the message quoted
        return str(self.args[0]) if self.args else ""


class UnsupportedDTypeError(ArrayqError, TypeError):
    """The backend has no native dtype for the requested arrayq dtype."""


class UnsupportedOperationError(ArrayqError, NotImplementedError):
    """The backend does not implement this op (and there is no reference default)."""


class QuantizationError(ArrayqError, ValueError):
    """Bad input to a quantization op: group size, bits, mode, shapes or dtypes."""


class LinAlgError(ArrayqError, ValueError):
    """A linear-algebra op met a matrix it cannot handle: singular (``inv``, ``solve``,
    ``triangular_solve``, ``matrix_power`` with n < 0), not positive definite
    (``cholesky``), or holding NaN/inf where a finite answer is needed (``matrix_rank``).
    The same type on every backend (a ValueError, as NumPy's own ``LinAlgError``)."""


class CompileError(ArrayqError, RuntimeError):
    """:func:`arrayq.compile` could not trace the function: it read an array's value on the
    host (``to_numpy``, ``float(x)``, ``.item()``, Python control flow on a value) while traced."""


def unsupported(backend: object, op: str) -> UnsupportedOperationError:
    """The error a backend's missing primitive raises (the contract's declaration)."""
    name, cls = getattr(backend, "name", "?"), type(backend).__name__
    return UnsupportedOperationError(
        f"backend {name!r} does not implement {op!r}; implement the primitive in {cls} or list it in declared_gaps"
    )
