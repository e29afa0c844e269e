"""arrayq's distributed ops on MLX's engine, ``mlx.core.distributed``: the ring backend
(TCP, for CPU hosts and Macs), NCCL (NVIDIA GPUs), MPI and JACCL, started by ``mlx.launch``.
arrayq adds no networking of its own: each op is one ``mx.distributed`` call on the group
``distributed_init`` returned (the frontend, ``arrayq.distributed``, has checked the ranks
and moved the arrays here)."""

from __future__ import annotations

from typing import Any, Protocol

from arrayq.backend import Array, DType


class _MLXBackend(Protocol):
    mx: Any  # mlx.core

    def native_dtype(self, dtype: DType) -> Any: ...


class Distributed:
    """Mixed into :class:`arrayq_mlx.MLXBackend`: the distributed optional native ops."""

    def distributed_init(self: _MLXBackend, engine: str) -> Any:
        # strict=False: MLX gives a group of this process alone where no engine is set up
        group = self.mx.distributed.init(strict=False, backend=engine)
        return group.rank(), group.size(), group

    def all_sum(self: _MLXBackend, x: Array, handle: Any) -> Any:
        return self.mx.distributed.all_sum(x, group=handle)

    def all_gather(self: _MLXBackend, x: Array, handle: Any) -> Any:
        return self.mx.distributed.all_gather(x, group=handle)

    def send(self: _MLXBackend, x: Array, dst: int, handle: Any) -> Any:
        return self.mx.distributed.send(x, dst, group=handle)

    def recv(self: _MLXBackend, shape: tuple[int, ...], dtype: DType, src: int, handle: Any) -> Any:
        return self.mx.distributed.recv(shape, self.native_dtype(dtype), src, group=handle)
