"""``arrayq.distributed``: collectives between processes, on the backend's own distributed
engine (arrayq adds no networking).

A program started N times by a launcher (MLX's ``mlx.launch``: the ring backend over TCP
for CPU hosts and Macs, NCCL for NVIDIA GPUs, MPI) calls :func:`init` once and passes the
:class:`Group` it returns to :func:`all_sum`, :func:`all_gather`, :func:`send` and
:func:`recv`. These are optional native ops of the backend contract
(``arrayq.backend.DISTRIBUTED_OPS``): a backend with an engine overrides them (MLX:
``mx.distributed``); one without (NumPy, whose ``capabilities()`` reports them as declared
gaps) gets a group of this process alone, where ``all_sum`` and ``all_gather`` return their
input, and :func:`init` refuses a process that a launcher started as one of several.

Each :class:`Group` counts the bytes of the arrays its collectives were given on this rank
(``payload_bytes``): what the tensor-parallel layers communicate, independent of the
engine's algorithm (a ring all-sum sends about ``2 (size-1)/size`` times its payload).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

import arrayq as aq

from .errors import BackendMismatchError, UnsupportedOperationError

#: The ``engine`` values :func:`init` takes ("any": the first the backend can start).
ENGINES = ("any", "ring", "nccl", "mpi", "jaccl")


class Group:
    """This process's place among the processes of one job: ``rank`` in ``0 .. size-1``,
    on backend ``backend`` (a name), ``handle`` the engine's own group (None for a group of
    one process without an engine). ``payload_bytes``: bytes handed to this group's
    collectives on this rank so far (reset it to measure a stretch); a collective inside
    :func:`arrayq.compile`'d code counts once, when traced (:func:`arrayq.nn.bytes_per_token`
    counts an eager pass).

    Not a dataclass on purpose: a model holding its group (a sharded one) keeps that one
    group when its arrays move (:func:`arrayq.nn.to_backend`), counter included."""

    def __init__(self, rank: int, size: int, backend: str, handle: Any = None):
        self.rank, self.size, self.backend, self.handle = rank, size, backend, handle
        self.payload_bytes = 0

    def __repr__(self) -> str:
        return f"Group(rank={self.rank}, size={self.size}, backend={self.backend!r})"


def launched_size(environ: Mapping[str, str] | None = None) -> int:
    """How many processes a launcher started this one among, as its environment says
    (``mlx.launch``'s ``MLX_WORLD_SIZE`` or ``MLX_HOSTFILE``, MPI's ``OMPI_COMM_WORLD_SIZE``
    or ``PMI_SIZE``); 1 when none did. A hostfile that cannot be read counts as 1 (the
    engine reports it)."""
    env = os.environ if environ is None else environ
    for key in ("MLX_WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"):
        value = env.get(key, "")
        if value.strip().isdigit():
            return max(int(value), 1)
    hostfile = env.get("MLX_HOSTFILE")
    if hostfile:
        try:
            with open(hostfile) as f:
                text = f.read().strip()
            hosts = json.loads(text) if text else []
        except (OSError, ValueError):
            return 1
        return max(len(hosts), 1) if isinstance(hosts, list) else 1
    return 1


def launched_engine(environ: Mapping[str, str] | None = None) -> str:
    """The engine the launcher set this process up for, from its environment: "nccl"
    (``NCCL_HOST_IP``, as ``mlx.launch --backend nccl`` sets), "ring" (``MLX_HOSTFILE``),
    "mpi" (``OMPI_COMM_WORLD_SIZE`` / ``PMI_SIZE``), else "any"."""
    env = os.environ if environ is None else environ
    if env.get("NCCL_HOST_IP"):
        return "nccl"
    if env.get("MLX_HOSTFILE"):
        return "ring"
    return "mpi" if env.get("OMPI_COMM_WORLD_SIZE") or env.get("PMI_SIZE") else "any"


def init(backend: Any = None, engine: str | None = None) -> Group:
    """This process's :class:`Group` on ``backend`` (a name or Backend; default: the
    current default backend), through its distributed engine ``engine`` (one of
    :data:`ENGINES`; MLX: "ring" over TCP, "nccl" on NVIDIA GPUs, "any" the first that
    starts; None: the launcher's, :func:`launched_engine`). Without a launcher the group is
    this process alone (size 1).

    Raises ValueError for an unknown engine; UnsupportedOperationError where the backend has
    no engine but the process was launched as one of several (naming the MLX backend), and
    RuntimeError where the engine formed a group of one although the launcher started
    several (a misconfigured launch)."""
    engine = launched_engine() if engine is None else engine
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    b = aq.get_backend(backend) if backend is not None else aq.current_backend()
    launched = launched_size()
    got = b.distributed_init(engine)
    if got is NotImplemented:
        if launched > 1:
            raise UnsupportedOperationError(
                f"backend {b.name!r} has no distributed engine, but this process was launched as one of "
                f"{launched}; run it on the mlx backend (--backend mlx or ARRAYQ_BACKEND=mlx), whose "
                "mx.distributed connects the processes"
            )
        return Group(0, 1, b.name)
    rank, size, handle = got
    if size == 1 and launched > 1:
        raise RuntimeError(
            f"this process was launched as one of {launched}, but backend {b.name!r}'s engine {engine!r} "
            "formed a group of one; check the launcher's --backend and that every host can reach the others"
        )
    return Group(int(rank), int(size), b.name, handle)


def _check(group: Any) -> Group:
    if not isinstance(group, Group):
        raise TypeError(f"group must be an arrayq.distributed.Group (from arrayq.distributed.init()), got {group!r}")
    return group


def _on_group(x: Any, group: Group, op: str) -> Any:
    """``x`` on the group's backend (NumPy arrays move there: NumPy gives way)."""
    b = aq.backend_of(x)
    if b is None:
        raise TypeError(f"{op} takes an array, got {type(x).__name__}")
    if b.name == group.backend:
        return x
    if b.gives_way:
        return aq.to_backend(x, group.backend)
    raise BackendMismatchError(
        f"{op}: the array is on backend {b.name!r} but the group on {group.backend!r}; "
        f"move it with arrayq.to_backend(x, {group.backend!r})"
    )


def _nbytes(x: Any) -> int:
    return math.prod(int(n) for n in x.shape) * aq.dtype(x).bits // 8


def _native(group: Group, op: str, *args: Any) -> Any:
    out = getattr(aq.get_backend(group.backend), op)(*args, group.handle)
    if out is NotImplemented:  # a group of several came from this backend's engine, so it owes the op
        raise UnsupportedOperationError(f"backend {group.backend!r} started a group of {group.size} but has no {op}")
    return out


def all_sum(x: Any, group: Group) -> Any:
    """The elementwise sum of ``x`` over the group's processes, on every one of them: same
    shape and dtype as ``x`` (which must be the same on each). On a group of one, ``x``.
    TypeError for a group that is not a Group; BackendMismatchError for an array of
    another backend (NumPy arrays move to the group's)."""
    group = _check(group)
    if group.size == 1:
        return x
    x = _on_group(x, group, "all_sum")
    group.payload_bytes += _nbytes(x)
    return _native(group, "all_sum", x)


def all_gather(x: Any, group: Group) -> Any:
    """Every process's ``x`` (shape (n, ...) the same on each) joined along axis 0 in rank
    order: (size*n, ...), ``x``'s dtype. On a group of one, ``x``. Errors as :func:`all_sum`."""
    group = _check(group)
    if group.size == 1:
        return x
    x = _on_group(x, group, "all_gather")
    if len(x.shape) == 0:
        raise ValueError("all_gather needs an array of at least one axis (it joins along axis 0), got a 0-d one")
    group.payload_bytes += _nbytes(x)
    return _native(group, "all_gather", x)


def _peer(group: Group, rank: Any, what: str) -> int:
    if not isinstance(rank, int) or isinstance(rank, bool) or not 0 <= rank < group.size or rank == group.rank:
        others = [r for r in range(group.size) if r != group.rank]
        raise ValueError(
            f"{what} must be another rank of the group ({others if others else 'none: a group of one process'}), "
            f"got {rank!r} on rank {group.rank}"
        )
    return rank


def send(x: Any, dst: int, group: Group) -> Any:
    """Send ``x`` to rank ``dst``, which must call :func:`recv` with x's shape and dtype.
    Returns the array to evaluate (``arrayq.eval``) for the send to happen on a lazy backend
    (MLX). ValueError unless ``dst`` is another rank of the group; errors as :func:`all_sum`."""
    group = _check(group)
    dst = _peer(group, dst, "dst")
    x = _on_group(x, group, "send")
    group.payload_bytes += _nbytes(x)
    return _native(group, "send", x, dst)


def recv(shape: tuple[int, ...], dtype: Any, src: int, group: Group) -> Any:
    """The array of ``shape`` and ``dtype`` that rank ``src`` sends with :func:`send`, on
    the group's backend. ValueError unless ``src`` is another rank or for a negative size."""
    group = _check(group)
    src = _peer(group, src, "src")
    shape = tuple(int(n) for n in shape)
    if any(n < 0 for n in shape):
        raise ValueError(f"shape must have sizes >= 0, got {shape}")
    return _native(group, "recv", shape, aq.as_dtype(dtype), src)


__all__ = ["ENGINES", "Group", "all_gather", "all_sum", "init", "launched_engine", "launched_size", "recv", "send"]
