"""The dtypes a backend maps to its library's (``Backend.native_dtype``), and the array
API's promotion rules, for backend authors: ``from arrayq.backend import dtypes as dt``.

Every name here is also in the frontend (``arrayq.float32`` is ``dt.float32``)."""

from .._dtypes import (
    ALL_DTYPES,
    DType,
    as_dtype,
    bfloat16,
    bool_,
    can_cast,
    complex64,
    complex128,
    float16,
    float32,
    float64,
    int8,
    int16,
    int32,
    int64,
    isdtype,
    result_type,
    uint8,
    uint16,
    uint32,
    uint64,
)

__all__ = [
    "ALL_DTYPES",
    "DType",
    "as_dtype",
    "bfloat16",
    "bool_",
    "can_cast",
    "complex64",
    "complex128",
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "isdtype",
    "result_type",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
]
