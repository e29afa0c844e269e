"""Data types and the data type functions (array API chapters "Data Types" and "Data Type
Functions"): DType objects and their equality with native dtypes, as_dtype, dtype, astype,
result_type and can_cast against array_api_strict's promotion table (an independent
implementation of the standard's), finfo and iinfo against numpy.finfo / ml_dtypes.finfo
and numpy.iinfo, isdtype against the standard's kind table, and the constants."""

import itertools
import math

import array_api_strict as strict
import ml_dtypes
import numpy as np
import pytest

import arrayq as aq
from tests._ops_support import be  # noqa: F401 (fixture)

COVERS = {"astype", "can_cast", "finfo", "iinfo", "isdtype", "result_type", "as_dtype", "dtype"}

# name: (kind, bits)
ALL = {
    "bool": ("bool", 8),
    "int8": ("signed", 8),
    "int16": ("signed", 16),
    "int32": ("signed", 32),
    "int64": ("signed", 64),
    "uint8": ("unsigned", 8),
    "uint16": ("unsigned", 16),
    "uint32": ("unsigned", 32),
    "uint64": ("unsigned", 64),
    "float16": ("float", 16),
    "bfloat16": ("float", 16),
    "float32": ("float", 32),
    "float64": ("float", 64),
    "complex64": ("complex", 64),
    "complex128": ("complex", 128),
}
ARRAY_API = [n for n in ALL if n not in ("float16", "bfloat16")]  # the standard's dtypes (array_api_strict's)


def _np(name):
    return np.dtype(ml_dtypes.bfloat16) if name == "bfloat16" else np.dtype(name)


# ---------------------------------------------------------------------- DType objects


@pytest.mark.parametrize("name", ALL)
def test_dtype_objects(name):
    d = getattr(aq, name)
    assert isinstance(d, aq.DType)
    assert (d.name, d.kind, d.bits) == (name, *ALL[name])
    assert repr(d) == f"arrayq.{name}"
    assert d.dtype == _np(name)
    assert aq.as_dtype(name) is d and aq.as_dtype(d) is d and aq.as_dtype(_np(name)) is d


def test_bool_has_both_spellings():
    assert aq.as_dtype("bool_") is aq.bool
    assert aq.as_dtype(bool) is aq.bool
    assert aq.as_dtype(np.bool_) is aq.bool


@pytest.mark.parametrize("name", ALL)
def test_dtype_equality_with_native_dtypes(name):
    d = getattr(aq, name)
    native = _np(name)
    assert d == native and native == d  # both directions
    assert not (d != native) and not (native != d)
    assert d == native.type  # the scalar type, e.g. numpy.float32
    assert d == name
    assert d == aq.as_dtype(name) and hash(d) == hash(aq.as_dtype(name))
    for other in ALL:
        if other != name:
            assert d != getattr(aq, other)
            assert d != _np(other) and _np(other) != d
            assert d != other
    assert d != None  # noqa: E711
    assert d != 3 and d != "float" and d != "int"
    assert {d: 1}[getattr(aq, name)] == 1  # DTypes work as dict keys


def test_dtype_of_arrays(be):
    for name in ALL:
        x = be.arr([1, 0], name)
        assert aq.dtype(x) is getattr(aq, name)
        assert aq.dtype(x) == x.dtype


@pytest.mark.parametrize("bad", ["float", "int", "float128", "object", np.dtype(object), np.dtype("U3"), 3, None, [1]])
def test_as_dtype_rejects_what_is_not_a_dtype(bad):
    with pytest.raises(TypeError):
        aq.as_dtype(bad)


# ---------------------------------------------------------------------- astype


@pytest.mark.parametrize(
    "src, dst, data, expected",
    [
        ("int8", "float32", [-3, 0, 7], [-3.0, 0.0, 7.0]),
        ("float64", "int16", [-3.0, 0.0, 7.0], [-3, 0, 7]),
        ("int32", "bool", [-3, 0, 7], [True, False, True]),
        ("bool", "uint8", [True, False], [1, 0]),
        ("float32", "float16", [0.5, -2.0], [0.5, -2.0]),
        ("float32", "bfloat16", [0.5, -2.0], [0.5, -2.0]),
        ("float64", "complex64", [0.5, -2.0], [0.5, -2.0]),
        ("uint16", "int64", [0, 65535], [0, 65535]),
        ("int64", "int64", [5], [5]),
    ],
)
def test_astype(be, src, dst, data, expected):
    x = be.arr(data, src)
    be.check(aq.astype(x, getattr(aq, dst)), expected, getattr(aq, dst))
    be.check(aq.astype(x, dst), expected, getattr(aq, dst))  # a name
    be.check(aq.astype(x, _np(dst)), expected, getattr(aq, dst))  # a native dtype


def test_astype_shapes_and_copies(be):
    x = be.arr(np.arange(6, dtype=np.float32).reshape(2, 3))
    copied = aq.astype(x, aq.float32)
    assert not np.shares_memory(be.out(copied), be.out(x))  # copy=True by default
    assert aq.astype(x, aq.float32, copy=False) is x
    be.check(aq.astype(x, aq.float64, copy=False), np.arange(6).reshape(2, 3), aq.float64)
    be.check(aq.astype(be.arr(2.5), aq.int8), 2, aq.int8)
    be.check(aq.astype(be.arr(np.zeros((0, 2), np.int8)), aq.complex128), np.zeros((0, 2)), aq.complex128)
    with pytest.raises(TypeError):
        aq.astype(x, "float")


# ---------------------------------------------------------------------- result_type, can_cast

STRICT_NAMES = {getattr(strict, n): n for n in ARRAY_API}


def _strict_result(*names):
    try:
        return STRICT_NAMES[strict.result_type(*(getattr(strict, n) for n in names))]
    except TypeError:
        return None


@pytest.mark.parametrize("a, b", list(itertools.product(ARRAY_API, repeat=2)))
def test_result_type_follows_the_array_api_table(a, b):
    expected = _strict_result(a, b)
    if expected is None:
        with pytest.raises(TypeError):
            aq.result_type(getattr(aq, a), getattr(aq, b))
    else:
        assert aq.result_type(getattr(aq, a), getattr(aq, b)) is getattr(aq, expected)
        assert aq.result_type(a, _np(b)) is getattr(aq, expected)  # names and native dtypes too


@pytest.mark.parametrize(
    "names",
    [
        ("int8", "uint8", "int16"),
        ("float32", "complex64", "float64"),
        ("uint8", "uint16", "int8"),
        ("bool", "bool", "bool"),
        ("int8", "uint64", "int64"),
        ("float32",),
        ("uint32", "int8", "uint8"),
    ],
)
def test_result_type_of_several(names):
    expected = _strict_result(*names)
    if expected is None:
        with pytest.raises(TypeError):
            aq.result_type(*(getattr(aq, n) for n in names))
    else:
        assert aq.result_type(*(getattr(aq, n) for n in names)) is getattr(aq, expected)


def test_result_type_of_arrays_and_bfloat16(be):
    assert aq.result_type(be.arr([1], aq.int8), be.arr([1], aq.int16)) is aq.int16
    assert aq.result_type(be.arr([1.0], aq.float32), aq.float64) is aq.float64
    # float16 and bfloat16 are outside the standard: they widen like its floats, and join
    # each other at float32
    assert aq.result_type(aq.float16, aq.float32) is aq.float32
    assert aq.result_type(aq.float16, aq.complex64) is aq.complex64
    assert aq.result_type(aq.float16, aq.float16) is aq.float16
    assert aq.result_type(aq.bfloat16, aq.float16) is aq.float32
    assert aq.result_type(aq.bfloat16, aq.bfloat16) is aq.bfloat16
    assert aq.result_type(aq.bfloat16, aq.float32) is aq.float32
    assert aq.result_type(aq.float64, aq.bfloat16) is aq.float64
    assert aq.result_type(aq.bfloat16, aq.complex64) is aq.complex64
    with pytest.raises(TypeError):
        aq.result_type(aq.bfloat16, aq.int8)
    with pytest.raises(ValueError):
        aq.result_type()


@pytest.mark.parametrize("a, b", list(itertools.product(ARRAY_API, repeat=2)))
def test_can_cast_follows_the_array_api_table(a, b):
    expected = strict.can_cast(getattr(strict, a), getattr(strict, b))
    assert aq.can_cast(getattr(aq, a), getattr(aq, b)) is expected
    assert aq.can_cast(_np(a), b) is expected


def test_can_cast_from_arrays(be):
    assert aq.can_cast(be.arr([1], aq.int8), aq.int32) is True
    assert aq.can_cast(be.arr([1.0], aq.float64), aq.float32) is False
    assert aq.can_cast(be.arr([True]), aq.int8) is False  # bool and int do not promote
    assert aq.can_cast(aq.bfloat16, aq.float32) is True and aq.can_cast(aq.float16, aq.bfloat16) is False


# ---------------------------------------------------------------------- finfo, iinfo

FLOATS = ["float16", "bfloat16", "float32", "float64", "complex64", "complex128"]


@pytest.mark.parametrize("name", FLOATS)
def test_finfo_matches_numpy_and_ml_dtypes(name, be):
    real = {"complex64": "float32", "complex128": "float64"}.get(name, name)
    ref = ml_dtypes.finfo(ml_dtypes.bfloat16) if real == "bfloat16" else np.finfo(np.dtype(real))
    for info in (aq.finfo(getattr(aq, name)), aq.finfo(name), aq.finfo(be.arr([1], name))):
        assert info.bits == ref.bits
        for field in ("eps", "max", "min", "smallest_normal"):
            value = getattr(info, field)
            assert type(value) is float, field  # the standard: Python floats
            assert value == float(getattr(ref, field)), field
        # for a complex dtype the limits are its real component's, and so is dtype
        assert info.dtype is getattr(aq, real)


@pytest.mark.parametrize("name", ["bool", "int8", "uint64"])
def test_finfo_rejects_non_floating(name):
    with pytest.raises(TypeError):
        aq.finfo(getattr(aq, name))


@pytest.mark.parametrize("name", [n for n, (k, _) in ALL.items() if k in ("signed", "unsigned")])
def test_iinfo_matches_numpy(name, be):
    ref = np.iinfo(np.dtype(name))
    for info in (aq.iinfo(getattr(aq, name)), aq.iinfo(name), aq.iinfo(be.arr([1], name))):
        assert (info.bits, info.min, info.max) == (ref.bits, int(ref.min), int(ref.max))
        assert type(info.min) is int and type(info.max) is int
        assert info.dtype is getattr(aq, name)


@pytest.mark.parametrize("name", ["bool", "float32", "complex64", "bfloat16"])
def test_iinfo_rejects_non_integers(name):
    with pytest.raises(TypeError):
        aq.iinfo(getattr(aq, name))


# ---------------------------------------------------------------------- isdtype

KINDS = {
    "bool": {"bool"},
    "signed integer": {"int8", "int16", "int32", "int64"},
    "unsigned integer": {"uint8", "uint16", "uint32", "uint64"},
    "integral": {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"},
    "real floating": {"float16", "bfloat16", "float32", "float64"},
    "complex floating": {"complex64", "complex128"},
    "numeric": set(ALL) - {"bool"},
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ALL)
def test_isdtype_kinds(name, kind):
    assert aq.isdtype(getattr(aq, name), kind) is (name in KINDS[kind])
    assert aq.isdtype(_np(name), kind) is (name in KINDS[kind])


def test_isdtype_with_dtypes_and_tuples():
    assert aq.isdtype(aq.int8, aq.int8) and not aq.isdtype(aq.int8, aq.int16)
    assert aq.isdtype(aq.float32, ("integral", aq.float32))
    assert aq.isdtype(aq.complex64, ("bool", "complex floating"))
    assert not aq.isdtype(aq.uint8, ("signed integer", "bool", aq.float32))
    assert not aq.isdtype(aq.int8, ())
    with pytest.raises(ValueError):
        aq.isdtype(aq.int8, "integer")


# ---------------------------------------------------------------------- constants


def test_constants():
    assert aq.e == math.e and aq.pi == math.pi
    assert aq.inf == math.inf and math.isnan(aq.nan)
    assert aq.newaxis is None
    assert type(aq.e) is type(aq.pi) is type(aq.inf) is type(aq.nan) is float
