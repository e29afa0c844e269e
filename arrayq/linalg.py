"""``arrayq.linalg``: the array API linear algebra extension's matrix products, plus
quantized linear algebra (:func:`quantized_matmul`, :func:`gather_qmm`)."""

from ._linear_algebra import matmul, tensordot, vecdot
from ._manipulation import matrix_transpose
from .quant import dequantize, gather_qmm, quantize, quantized_matmul

__all__ = [
    "dequantize",
    "gather_qmm",
    "matmul",
    "matrix_transpose",
    "quantize",
    "quantized_matmul",
    "tensordot",
    "vecdot",
]
