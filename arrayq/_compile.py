"""``arrayq.compile``: trace a backend-agnostic function once per signature and replay it.

A call's *signature* is its backend, device, each array input's type, shape and dtype, and the
values of everything else (static arguments: they must be hashable). The first call with a
signature hands the function, taking its arrays flattened, to the backend's hook
:meth:`arrayq.backend.Backend.compile` (MLX: ``mx.compile``). Where that returns
``NotImplemented``, a backend with ``compile_records_plan`` (NumPy) gets a recorded plan of
its calls (:mod:`arrayq._plan`), and any other (the strict example) runs the function
eagerly, which is correct everywhere. Arrays inside tuples, lists, dicts and dataclasses
(a ``QuantizedWeight``, an ``nn`` layer, a model) are inputs too: :func:`flatten` finds
them. See docs/compile.md.
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, overload

from ._dispatch import _context_device, resolve
from ._plan import Recording, record
from ._registry import _type_cache, backend_of
from ._replay import Declined, Plan
from .errors import CompileError

_SCALARS = (bool, int, float, complex, str, bytes, type(None))


# ---- a small pytree: containers of arrays -> (arrays, a hashable structure) -----------


class _Leaf:
    """The place of an array in a structure (one shared instance)."""

    def __repr__(self) -> str:
        return "<array>"


_LEAF = _Leaf()


def flatten(obj: Any, where: str = "argument", static_must_hash: bool = True) -> tuple[list[Any], Any]:
    """The arrays in ``obj`` (depth first) and a structure that :func:`unflatten` rebuilds
    ``obj`` from. The structure is hashable, with every non-array value in it; with
    ``static_must_hash``, a value that is not hashable raises TypeError naming ``where``."""
    leaves: list[Any] = []

    # (a value's path is kept as (parent, key, is_attribute) and spelt out only for an error:
    # a compiled call flattens every argument, a model's hundreds of arrays included)
    def walk(o: Any, path: Any) -> Any:
        t = type(o)
        if _type_cache.get(t) is not None:  # an array (the common case, found first)
            leaves.append(o)
            return _LEAF
        kind = _KINDS.get(t) or _kind(t)
        if kind == "s":
            return ("s", t, o)  # the type too: 1, 1.0 and True hash alike
        if kind == "tuple?":  # (a tuple subclass: named if it has _fields)
            kind = "n" if hasattr(o, "_fields") else "t"
        if kind == "n":
            return ("n", t, walk_all(zip(o._fields, o), path, True))
        if kind == "t":
            return ("t", t, walk_all(enumerate(o), path, False))
        if kind == "d":
            return ("d", t, tuple(o), walk_all(o.items(), path, False))
        if type(kind) is tuple:  # a dataclass's fields
            return ("c", t, kind, walk_all(((n, getattr(o, n)) for n in kind), path, True))
        if _is_array(o):
            leaves.append(o)
            return _LEAF
        if static_must_hash:
            try:
                hash(o)
            except TypeError:
                raise TypeError(
                    f"arrayq.compile: {_path_text(path)} is a {type(o).__name__}, which is not hashable; a "
                    "non-array argument is static (its value selects the compiled version), so it must be "
                    "hashable: pass a tuple, a frozen dataclass or an array instead"
                ) from None
        return ("o", o)

    def walk_all(items: Any, path: Any, attribute: bool) -> tuple[Any, ...]:
        """A container's ``(key, value)`` items walked (its arrays without a call each: a
        list of a model's weights, a cache's buffers)."""
        parts: list[Any] = []
        for key, v in items:
            t = type(v)
            if _type_cache.get(t) is not None:
                leaves.append(v)
                parts.append(_LEAF)
            elif t in _SCALAR_TYPES:  # (what walk gives them, without the call)
                parts.append(("s", t, v))
            else:
                parts.append(walk(v, (path, key, attribute)))
        return tuple(parts)

    return leaves, walk(obj, where)


_SCALAR_TYPES = frozenset(_SCALARS)


def _kind(t: type) -> Any:
    """How :func:`flatten` walks a value of type ``t`` (not an array type): "s" (a scalar),
    "n" (a named tuple), "t" (a tuple or list), "tuple?" (a tuple subclass: named where the
    value has ``_fields``), "d" (a dict), a dataclass's field names, or "o" (anything else),
    kept per type."""
    if issubclass(t, _SCALARS):
        kind: Any = "s"
    elif issubclass(t, tuple):
        kind = "t" if t is tuple else "tuple?"
    elif issubclass(t, list):
        kind = "t"
    elif issubclass(t, dict):
        kind = "d"
    else:
        names = _dataclass_fields(t)
        kind = "o" if names is None else names
    if len(_KINDS) < 256:  # (bounded: types are few, but classes can be made at run time)
        _KINDS[t] = kind
    return kind


_KINDS: dict[type, Any] = {}


def _path_text(path: Any) -> str:
    """``argument 'x'.layers[0]['k']`` for the path ``flatten`` keeps."""
    if isinstance(path, str):
        return path
    parent, key, attribute = path
    return f"{_path_text(parent)}.{key}" if attribute else f"{_path_text(parent)}[{key!r}]"


def _dataclass_fields(cls: type) -> tuple[str, ...] | None:
    """A dataclass's constructor fields, None for any other type (dataclasses.is_dataclass
    and dataclasses.fields are slow per call: kept per type)."""
    try:
        return _FIELDS[cls]
    except KeyError:
        pass
    names = tuple(f.name for f in dataclasses.fields(cls) if f.init) if dataclasses.is_dataclass(cls) else None
    if len(_FIELDS) < 256:  # (bounded: types are few, but classes can be made at run time)
        _FIELDS[cls] = names
    return names


_FIELDS: dict[type, tuple[str, ...] | None] = {}


def unflatten(structure: Any, leaves: list[Any]) -> Any:
    """The object :func:`flatten` took apart, with ``leaves`` for its arrays."""
    it = iter(leaves)

    def build(s: Any) -> Any:
        if s is _LEAF:
            return next(it)
        tag = s[0]
        if tag == "s":
            return s[2]
        if tag == "o":
            return s[1]
        parts = [next(it) if p is _LEAF else build(p) for p in s[-1]]  # (arrays without a call each)
        if tag == "n":
            return s[1](*parts)
        if tag == "t":
            return s[1](parts)
        if tag == "d":
            return s[1](zip(s[2], parts))
        return s[1](**dict(zip(s[2], parts)))  # a dataclass, rebuilt (and re-validated)

    return build(structure)


def rebuilder(structure: Any) -> Callable[[list[Any]], Any]:
    """A function of the leaves doing what ``unflatten(structure, leaves)`` does, made once
    for a structure that is rebuilt on every call (a compiled function's result): one
    generated expression, without the walk over the structure. Only names made here from
    numbers are in its text (the structure's types and static values are variables); a
    structure too deep for one expression gets :func:`unflatten` itself."""
    constants: list[Any] = []
    count = [0]

    def const(value: Any) -> str:
        constants.append(value)
        return f"c{len(constants) - 1}"

    def expr(s: Any, depth: int) -> str:
        if depth > 40:
            raise RecursionError
        if s is _LEAF:
            count[0] += 1
            return f"a[{count[0] - 1}]"
        tag = s[0]
        if tag in ("s", "o"):
            return const(s[-1])
        parts = "".join(f"{expr(p, depth + 1)}, " for p in s[-1])
        if tag == "n":
            return f"{const(s[1])}({parts})"
        if tag == "t":
            return f"({parts})" if s[1] is tuple else f"[{parts}]" if s[1] is list else f"{const(s[1])}([{parts}])"
        if tag == "d":
            return f"{const(s[1])}(zip({const(s[2])}, ({parts})))"
        if _positional(s[1], s[2]):  # a dataclass, rebuilt (and re-validated) by its constructor
            return f"{const(s[1])}({parts})"
        return f"{const(s[1])}(**dict(zip({const(s[2])}, ({parts}))))"

    try:
        body = expr(structure, 0)
    except RecursionError:
        return functools.partial(unflatten, structure)
    names = "".join(f"c{i}, " for i in range(len(constants)))
    source = f"def make(constants):\n    {names or '_'} = constants\n    return lambda a: {body}"
    namespace: dict[str, Any] = {}
    exec(builtins.compile(source, "<arrayq result structure>", "exec"), namespace)  # (not this module's)
    return namespace["make"](constants)


def _positional(cls: type, names: tuple[str, ...]) -> bool:
    """Whether the dataclass's constructor takes ``names`` (its init fields) by position."""
    return not any(f.kw_only for f in dataclasses.fields(cls) if f.init)


def _is_array(o: Any) -> bool:
    try:
        return backend_of(o) is not None
    except TypeError:  # no loaded backend's array: a static value
        return False


# ---- the compiled function ---------------------------------------------------------------


class CacheInfo(NamedTuple):
    """What :meth:`Compiled.cache_info` reports: ``hits`` and ``misses`` (calls that found,
    or had to make, a compiled version), ``signatures`` (versions made so far: one per
    signature; a number that keeps growing means retracing) and ``native`` (how many of those
    run compiled: by the backend's hook, or as a recorded plan; the rest run eagerly)."""

    hits: int
    misses: int
    signatures: int
    native: int


class _Entry:
    __slots__ = ("run", "eager", "native", "out_structure", "rebuild", "reason")

    def __init__(self) -> None:
        self.run: Callable[..., Any] = lambda *a: None
        self.eager: Callable[..., Any] = self.run
        self.native = False
        self.out_structure: Any = None
        #: (out_structure, its :func:`rebuilder` or None before the second call with it)
        self.rebuild: tuple[Any, Callable[[list[Any]], Any] | None] | None = None
        self.reason: str | None = None  # why a recorded plan runs eagerly instead


class Compiled:
    """A function wrapped by :func:`compile`. Call it like the function."""

    def __init__(self, fn: Callable[..., Any], donate: tuple[str, ...] = ()) -> None:
        self.fn = fn
        functools.update_wrapper(self, fn)
        self._cache: dict[Any, _Entry] = {}
        self._hits = self._misses = 0
        try:
            params = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):
            params = []
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self._names = [p.name for p in params if p.kind in positional]
        unknown = sorted(set(donate) - {p.name for p in params})
        if unknown:
            raise ValueError(
                f"arrayq.compile(donate=...) names {unknown}, which are not parameters of "
                f"{getattr(fn, '__qualname__', fn)!r}; name the arguments whose arrays it may write into"
            )
        self._donate = frozenset(donate)

    def _arg_name(self, i: int) -> str:
        return f"argument {self._names[i]!r}" if i < len(self._names) else f"positional argument {i}"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        leaves: list[Any] = []
        parts = []
        for i, a in enumerate(args):
            ls, s = flatten(a, self._arg_name(i))
            leaves += ls
            parts.append(s)
        kw_parts = []
        for k, v in kwargs.items():
            ls, s = flatten(v, f"argument {k!r}")
            leaves += ls
            kw_parts.append(s)
        structure = ("t", tuple, (*parts, ("d", dict, tuple(kwargs), tuple(kw_parts))))
        backend, leaves = resolve(*leaves)
        if type(backend) is Recording:  # called inside another function's recording: part of its plan
            return self.fn(*args, **kwargs)
        device = backend.device_of(leaves[0]) if leaves else _context_device(backend)
        dtype_of = backend.dtype_of
        key = (id(backend), device, structure, tuple([(type(x), tuple(x.shape), dtype_of(x)) for x in leaves]))
        entry = self._cache.get(key)
        if entry is None:
            self._misses += 1
            entry = self._cache[key] = self._make(backend, structure)
        else:
            self._hits += 1
        try:
            flat_out = entry.run(*leaves)
        except CompileError:
            raise
        except Declined as e:  # a recorded plan met a value-dependent choice: eager from now on
            entry.run, entry.native, entry.reason = entry.eager, False, str(e)
            flat_out = entry.run(*leaves)
        except Exception as e:
            if entry.native and not isinstance(entry.run, Plan) and _is_trace_error(e):
                del self._cache[key]
                raise CompileError(
                    f"arrayq.compile({getattr(self.fn, '__qualname__', self.fn)!r}) on backend {backend.name!r}: "
                    "the function reads an array's value on the host while it is being traced (to_numpy, "
                    "float(x), int(x), bool(x), .item(), `if x > 0:` or arrayq.eval); a traced function sees "
                    "no values. Keep value-dependent Python logic outside the compiled function, or use "
                    f"arrayq.where for the branch. ({type(e).__name__}: {e})"
                ) from e
            raise
        structure = entry.out_structure
        if not entry.native:  # (run eagerly: the result's static values may change call to call)
            return unflatten(structure, list(flat_out))
        if entry.rebuild is None or entry.rebuild[0] is not structure:  # a traced result's structure
            entry.rebuild = (structure, None)  # (the first call with it: perhaps the only one)
            return unflatten(structure, list(flat_out))
        rebuild = entry.rebuild[1]
        if rebuild is None:
            rebuild = rebuilder(structure)
            entry.rebuild = (structure, rebuild)
        return rebuild(flat_out)

    def _make(self, backend: Any, structure: Any) -> _Entry:
        entry = _Entry()
        fn = self.fn

        def flat_fn(*flat: Any) -> list[Any]:
            *args, kwargs = unflatten(structure, list(flat))
            out = fn(*args, **kwargs)
            out_leaves, entry.out_structure = flatten(out, "the result", static_must_hash=False)
            return out_leaves

        compiled = backend.compile(flat_fn)
        entry.eager = flat_fn
        if compiled is not NotImplemented:
            entry.run, entry.native = compiled, True
        elif getattr(backend, "compile_records_plan", False):
            donated = self._donated(structure)

            def first(*leaves: Any) -> list[Any]:  # records, then replays from the next call on
                results, plan, entry.reason = record(backend, flat_fn, list(leaves), donated)
                entry.run, entry.native = (flat_fn, False) if plan is None else (plan, True)
                return results

            entry.run = first
        else:
            entry.run = flat_fn
        return entry

    def _donated(self, structure: Any) -> frozenset[int]:
        """The places among a call's arrays of those in the donated arguments."""
        *parts, (_, _, kw_names, kw_parts) = structure[2]
        names = [self._names[i] if i < len(self._names) else None for i in range(len(parts))] + list(kw_names)
        places: list[int] = []
        start = 0
        for name, part in zip(names, [*parts, *kw_parts]):
            count = _count_leaves(part)
            if name in self._donate:
                places.extend(range(start, start + count))
            start += count
        return frozenset(places)

    def eager_reasons(self) -> list[str]:
        """Why signatures run eagerly on a backend that records plans (a host read, a
        data-dependent shape, ...: docs/compile.md), one line per such signature."""
        return [e.reason for e in self._cache.values() if e.reason is not None]

    def cache_info(self) -> CacheInfo:
        """Calls and compiled versions so far (see :class:`CacheInfo`)."""
        entries = list(self._cache.values())  # (one step: another thread may be adding a signature)
        return CacheInfo(self._hits, self._misses, len(entries), sum(e.native for e in entries))

    def cache_clear(self) -> None:
        """Forget every compiled version (the next call of each signature compiles anew)."""
        self._cache.clear()
        self._hits = self._misses = 0


def _count_leaves(s: Any) -> int:
    """How many arrays the structure ``s`` (of :func:`flatten`) holds."""
    if s is _LEAF:
        return 1
    if s[0] in ("n", "t"):
        return sum(map(_count_leaves, s[2]))
    if s[0] in ("d", "c"):
        return sum(map(_count_leaves, s[3]))
    return 0


def _is_trace_error(e: Exception) -> bool:
    """A host sync met while tracing: MLX raises RuntimeError/ValueError about compile or
    transformations; JAX's ``float(tracer)`` raises a TypeError about a tracer
    (``jax.errors.ConcretizationTypeError``)."""
    text = str(e).lower()
    if isinstance(e, TypeError):
        return "tracer" in text
    return isinstance(e, (RuntimeError, ValueError)) and (
        "compile" in text or "transformation" in text or "tracer" in text
    )


@overload
def compile(fn: Callable[..., Any], *, donate: Sequence[str] = ()) -> Compiled: ...  # noqa: A001
@overload
def compile(fn: None = None, *, donate: Sequence[str] = ()) -> Callable[[Callable[..., Any]], Compiled]: ...  # noqa: A001
def compile(fn: Callable[..., Any] | None = None, *, donate: Sequence[str] = ()) -> Any:  # noqa: A001
    """``fn`` compiled once per signature (backend, device, array shapes and dtypes, static
    argument values) by the backend's :meth:`~arrayq.backend.Backend.compile` hook; where it
    has none, a recorded plan of its calls on a backend with ``compile_records_plan``
    (NumPy), else run eagerly. Use as a decorator (``@arrayq.compile`` or
    ``@arrayq.compile(donate=("cache",))``).

    ``donate``: names of parameters whose arrays the compiled function may write into in
    place on a recorded plan (``slice_update`` of a buffer no other step reads, as a KV
    cache's), instead of copying them; the caller must not use those arrays afterwards.
    Backends with their own hook ignore it. Raises ValueError for a name that is not a
    parameter of ``fn``. See docs/compile.md for what may be traced and when a call compiles
    anew; ``.cache_info()`` counts the versions made, ``.eager_reasons()`` says why any run
    eagerly."""
    if fn is None:
        return functools.partial(Compiled, donate=tuple(donate))
    return Compiled(fn, tuple(donate))
