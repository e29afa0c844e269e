"""arrayq's dtype objects and the promotion rules of the array API standard.

A backend maps each :class:`DType` to its own native dtype (``Backend.native_dtype``).
A DType compares equal to another DType of the same name and to any native dtype whose
string form ends in that name (``numpy.dtype('float32')``, ``mlx.core.float32``), so
``arrayq.float32 == x.dtype`` works whatever backend made ``x``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, eq=False)
class DType:
    """A backend-independent dtype: ``name`` ("float32"), ``kind`` ("bool", "signed",
    "unsigned", "float", "complex") and ``bits``."""

    name: str
    kind: str
    bits: int

    def __repr__(self) -> str:
        return f"arrayq.{self.name}"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DType):
            return other.name == self.name
        return _native_name(other) == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    @property
    def dtype(self) -> Any:
        """The NumPy dtype of the same name; lets NumPy compare and convert arrayq dtypes."""
        import numpy as np

        if self.name == "bfloat16":
            import ml_dtypes

            return np.dtype(ml_dtypes.bfloat16)
        return np.dtype(self.name)


def _native_name(native: object) -> str | None:
    if isinstance(native, str):
        return native
    text = getattr(native, "name", None)
    if not isinstance(text, str):
        text = str(native)
    # "mlx.core.float32", "<class 'numpy.float32'>", "float32"
    return text.rsplit(".", 1)[-1].strip("'>")


bool_ = DType("bool", "bool", 8)
int8 = DType("int8", "signed", 8)
int16 = DType("int16", "signed", 16)
int32 = DType("int32", "signed", 32)
int64 = DType("int64", "signed", 64)
uint8 = DType("uint8", "unsigned", 8)
uint16 = DType("uint16", "unsigned", 16)
uint32 = DType("uint32", "unsigned", 32)
uint64 = DType("uint64", "unsigned", 64)
float16 = DType("float16", "float", 16)
bfloat16 = DType("bfloat16", "float", 16)
float32 = DType("float32", "float", 32)
float64 = DType("float64", "float", 64)
complex64 = DType("complex64", "complex", 64)
complex128 = DType("complex128", "complex", 128)

ALL_DTYPES: tuple[DType, ...] = (
    bool_,
    int8,
    int16,
    int32,
    int64,
    uint8,
    uint16,
    uint32,
    uint64,
    float16,
    bfloat16,
    float32,
    float64,
    complex64,
    complex128,
)
_BY_NAME = {d.name: d for d in ALL_DTYPES}
_BY_NAME["bool_"] = bool_


def as_dtype(dtype: object) -> DType:
    """The arrayq DType for ``dtype``: a DType, a name ("float32") or a native dtype.

    Raises TypeError for anything that names no dtype arrayq knows.
    """
    if isinstance(dtype, DType):
        return dtype
    try:  # native dtypes seen before (looking up a NumPy dtype's name costs microseconds)
        return _BY_NATIVE[type(dtype), dtype]
    except (KeyError, TypeError):  # TypeError: an unhashable object
        pass
    if dtype is bool:
        return bool_
    name = _native_name(dtype)
    found = _BY_NAME.get(name) if name else None
    if found is None:
        known = ", ".join(d.name for d in ALL_DTYPES)
        raise TypeError(f"{dtype!r} is not a dtype arrayq knows; use one of: {known}")
    if len(_BY_NATIVE) < 256:  # bounded: dtypes are few, but hashable look-alikes could be many
        _BY_NATIVE[type(dtype), dtype] = found
    return found


#: (type, native dtype) -> DType, filled by as_dtype (a cache); the type first, so that one library's dtype is never
#: compared with another's (array_api_strict warns on such comparisons)
_BY_NATIVE: dict[tuple[type, object], DType] = {}


# ---- array API "data type functions" -------------------------------------------------

_KIND_GROUPS = {
    "bool": {"bool"},
    "signed integer": {"signed"},
    "unsigned integer": {"unsigned"},
    "integral": {"signed", "unsigned"},
    "real floating": {"float"},
    "complex floating": {"complex"},
    "numeric": {"signed", "unsigned", "float", "complex"},
}


def isdtype(dtype: object, kind: object) -> bool:
    """Whether ``dtype`` is of ``kind``: a dtype, a kind name ("integral", "real floating",
    "numeric", ...) or a tuple of these (array API ``isdtype``). Raises ValueError for an
    unknown kind name."""
    dt = as_dtype(dtype)
    if isinstance(kind, tuple):
        return any(isdtype(dt, k) for k in kind)
    if isinstance(kind, str):
        if kind not in _KIND_GROUPS:
            raise ValueError(f"unknown dtype kind {kind!r}; use one of {sorted(_KIND_GROUPS)}")
        return dt.kind in _KIND_GROUPS[kind]
    return dt == as_dtype(kind)


def _promote_pair(a: DType, b: DType) -> DType:
    if a == b:
        return a
    if a.kind == b.kind:
        if {a.name, b.name} == {"float16", "bfloat16"}:
            return float32
        return a if a.bits > b.bits else b
    kinds = {a.kind, b.kind}
    if kinds == {"signed", "unsigned"}:
        s, u = (a, b) if a.kind == "signed" else (b, a)
        if s.bits > u.bits:
            return s
        if u.bits < 64:
            return _BY_NAME[f"int{2 * u.bits}"]
        raise TypeError(f"no dtype holds both {a.name} and {b.name}; cast one explicitly")
    if kinds == {"float", "complex"}:
        f, c = (a, b) if a.kind == "float" else (b, a)
        return complex128 if max(f.bits * 2, c.bits) > 64 else complex64
    raise TypeError(
        f"the array API defines no promotion between {a.name} and {b.name}; cast one with arrayq.astype first"
    )


def result_type(*arrays_and_dtypes: object) -> DType:
    """The dtype the array API promotion rules give for these arrays and dtypes.
    Raises TypeError for mixed kinds the standard does not define (e.g. int and float)."""
    if not arrays_and_dtypes:
        raise ValueError("result_type needs at least one array or dtype")
    dts = [as_dtype(getattr(a, "dtype", a)) for a in arrays_and_dtypes]
    out = dts[0]
    for d in dts[1:]:
        out = _promote_pair(out, d)
    return out


def can_cast(from_: object, to: object, /) -> bool:
    """Whether promotion of ``from_`` (array or dtype) and ``to`` gives ``to`` (array API
    ``can_cast``: casts that lose no information)."""
    src, dst = as_dtype(getattr(from_, "dtype", from_)), as_dtype(to)
    try:
        return _promote_pair(src, dst) == dst
    except TypeError:  # kinds the promotion table does not join (bool and int, int and float)
        return False


@dataclass(frozen=True)
class finfo_object:
    bits: int
    eps: float
    max: float
    min: float
    smallest_normal: float
    dtype: DType


@dataclass(frozen=True)
class iinfo_object:
    bits: int
    max: int
    min: int
    dtype: DType


# (mantissa bits, max exponent) for each float format; complex uses its component's.
_FLOAT_FORMATS = {"float16": (10, 15), "bfloat16": (7, 127), "float32": (23, 127), "float64": (52, 1023)}
_COMPLEX_PART = {"complex64": "float32", "complex128": "float64"}


def finfo(type: object, /) -> finfo_object:
    """Machine limits of a floating dtype (array API ``finfo``). Raises TypeError for a
    non-floating dtype."""
    dt = as_dtype(getattr(type, "dtype", type))
    name = _COMPLEX_PART.get(dt.name, dt.name)
    if name not in _FLOAT_FORMATS:
        raise TypeError(f"finfo needs a floating dtype, got {dt.name}; use iinfo for integers")
    mant, emax = _FLOAT_FORMATS[name]
    largest = (2.0 - 2.0**-mant) * 2.0**emax
    # for a complex dtype, the limits (and ``dtype``) are those of its real component
    return finfo_object(
        bits=_BY_NAME[name].bits,
        eps=2.0**-mant,
        max=largest,
        min=-largest,
        smallest_normal=2.0 ** (1 - emax),
        dtype=_BY_NAME[name],
    )


def iinfo(type: object, /) -> iinfo_object:
    """Limits of an integer dtype (array API ``iinfo``). Raises TypeError otherwise."""
    dt = as_dtype(getattr(type, "dtype", type))
    if dt.kind == "signed":
        return iinfo_object(dt.bits, 2 ** (dt.bits - 1) - 1, -(2 ** (dt.bits - 1)), dt)
    if dt.kind == "unsigned":
        return iinfo_object(dt.bits, 2**dt.bits - 1, 0, dt)
    raise TypeError(f"iinfo needs an integer dtype, got {dt.name}; use finfo for floats")
