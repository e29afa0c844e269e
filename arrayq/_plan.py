"""Recorded plans: :func:`arrayq.compile` on an eager backend that has no compile hook of its
own but sets ``Backend.compile_records_plan`` (NumPy).

The first call of a signature runs the function once on *tracers*: wrappers of the real
arrays, whose type maps (in the registry's type cache, for the trace only) to a recording
stand-in of the backend. Every backend method the frontend calls on them runs at once on the
real arrays and is written down as a *step*: the bound method, its arguments as places in
an environment (the call's arrays, earlier steps' results, constants), and the place of its
result. Native operations on the arrays (indexing, ``x * 2``, ``x[i] = v``) are steps too.
Later calls replay the steps: no dispatch, no validation, no containers rebuilt.

* Arrays that do not come from the inputs (created inside, or read from a closure) are
  constants of the plan; one returned as a result is copied on each replay.
* A host read (``int(x)``, ``bool(x)``, ``float(x)``, ``.item()``, ``to_numpy``, an array
  converted by NumPy, a data-dependent shape) ends the recording: the trace's results are
  kept (it ran eagerly) and the signature runs eagerly from then on
  (``Compiled.eager_reasons()`` says why).
* ``x[key] = v`` on an array derived from the inputs replays as the same write (as eager
  code writes the caller's array, so does the replay). Plain arrays (constants) are not
  watched: a write into one happens once, when recording.
* ``slice_update`` of a *donated* input (``arrayq.compile(fn, donate=...)``) that no other
  step reads writes into that input in place on replay instead of copying it.
* A native op that returned a result when traced but declines on replay (``NotImplemented``,
  a choice made from values) raises :class:`arrayq._replay.Declined`; the caller runs the
  call eagerly.
* When the recording ends, its steps are lowered (:func:`arrayq._replay.lower`: steps that
  change nothing dropped, the backend's replay forms) and made into a
  :class:`arrayq._replay.Plan`.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import operator
from collections.abc import Callable
from typing import Any, cast

import numpy as np

from ._registry import _type_cache
from ._replay import Plan, _Step, describe, lower
from .backend import Backend

#: Backend methods that say something about arrays without computing new ones: run, never recorded.
_METADATA = frozenset({"dtype_of", "device_of", "is_array", "check_device", "devices", "gaps", "native_dtype"})
#: Backend methods that only force lazy arrays: nothing to do on an eager backend.
_NO_OPS = frozenset({"eval", "async_eval"})
#: Backend methods whose result's shape depends on the values.
_VALUE_SHAPED = frozenset({"nonzero", "unique_all", "unique_counts", "unique_inverse", "unique_values", "repeat"})


_PLAIN = (int, float, str, bool, type(None))


class _Stop(Exception):
    """Raised inside the recorder only to leave a recording that can no longer be used."""


class _Tracer:
    """An array during a recording: the real ``value`` and its place in the plan."""

    __slots__ = ("rec", "slot", "value")
    __array_ufunc__ = None  # NumPy hands its operators back to ours (x + tracer -> __radd__)

    def __init__(self, rec: _Recorder, slot: int, value: Any) -> None:
        self.rec, self.slot, self.value = rec, slot, value

    # what the signature fixes: read freely
    shape = property(lambda self: self.value.shape)
    ndim = property(lambda self: self.value.ndim)
    dtype = property(lambda self: self.value.dtype)
    size = property(lambda self: self.value.size)

    def __len__(self) -> int:
        return len(self.value)

    def __iter__(self) -> Any:
        return (self[i] for i in range(len(self.value)))

    def __getitem__(self, key: Any) -> Any:
        return self.rec.native(operator.getitem, (self, key), "indexing")

    def __setitem__(self, key: Any, update: Any) -> None:
        self.rec.native(operator.setitem, (self, key, update), "x[...] = v")

    def __getattr__(self, name: str) -> Any:  # anything else of the array: read on the host
        if name.startswith("__"):  # protocols probed (NumPy's __array_struct__...): not offered
            raise AttributeError(name)
        self.rec.stop(f"the array's .{name} (only .shape, .ndim, .dtype and .size are traced)")
        return getattr(self.value, name)

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        self.rec.stop("NumPy converting the array (np.asarray(x) or a NumPy function)")
        return np.asarray(self.value, dtype=dtype)

    def __repr__(self) -> str:
        self.rec.stop("repr(x) (printing an array reads it)")
        return repr(self.value)


def _host_read(name: str, convert: Callable[[Any], Any]) -> Callable[..., Any]:
    def read(self: _Tracer, *args: Any) -> Any:
        self.rec.stop(f"{name} reads the array's value on the host")
        return convert(self.value, *map(_values, args))

    return read


_READS: dict[str, Callable[..., Any]] = {
    "__bool__": bool,
    "__int__": int,
    "__float__": float,
    "__complex__": complex,
    "__index__": operator.index,
    "__str__": str,
    "__format__": format,
    "item": lambda v, *a: v.item(*a),
    "tolist": lambda v: v.tolist(),
}
for _name, _convert in _READS.items():
    setattr(_Tracer, _name, _host_read(f"{_name.strip('_')}(x)", _convert))


def _operator(fn: Callable[..., Any], reflected: bool) -> Callable[..., Any]:
    if reflected:
        return lambda self, other: self.rec.native(fn, (other, self), fn.__name__)
    return lambda self, *other: self.rec.native(fn, (self, *other), fn.__name__)


for _name in (
    "add",
    "sub",
    "mul",
    "truediv",
    "floordiv",
    "mod",
    "pow",
    "matmul",
    "and",
    "or",
    "xor",
    "lshift",
    "rshift",
):
    _fn = getattr(operator, f"{_name}_" if _name in ("and", "or") else _name)
    setattr(_Tracer, f"__{_name}__", _operator(_fn, False))
    setattr(_Tracer, f"__r{_name}__", _operator(_fn, True))
    # x += y writes into x: eager code changes the array; the recording stops (correct, eager)
    setattr(
        _Tracer, f"__i{_name}__", _host_read(f"x {_name}= y (an in-place operator)", getattr(operator, f"i{_name}"))
    )
for _name in ("lt", "le", "gt", "ge", "eq", "ne", "neg", "pos", "abs", "invert"):
    setattr(_Tracer, f"__{_name}__", _operator(getattr(operator, _name), False))
_Tracer.__hash__ = None  # type: ignore[assignment]  # as an array's: == is elementwise


class Recording(Backend):
    """The backend as a recording sees it (a Backend, for the frontend's checks): the real
    backend's attributes, and its methods recorded."""

    def __init__(self, rec: _Recorder) -> None:
        self._rec = rec
        #: what arrayq._dispatch.resolve recognises: this stands for that backend, whose own
        #: arrays (constants) mix with the tracers without moving
        self.arrayq_records = rec.backend

    def __getattribute__(self, name: str) -> Any:
        own = object.__getattribute__(self, "__dict__")
        if name in own or name.startswith("__"):
            return own[name] if name in own else object.__getattribute__(self, name)
        rec = own["_rec"]
        attr = getattr(rec.backend, name)
        if not callable(attr) or not hasattr(attr, "__self__"):
            return attr
        recorded = functools.partial(rec.call, name, attr)
        own[name] = recorded  # looked up once per recording
        return recorded

    def __repr__(self) -> str:
        return f"<recording of {self.arrayq_records!r}>"


class _Recorder:
    """One recording: the environment's places, the steps, and why it stopped (if it did)."""

    def __init__(self, backend: Any, inputs: int) -> None:
        self.backend = backend
        self.inputs = inputs
        self.places = inputs  # the next free place
        self.steps: list[_Step] = []
        self.constants: dict[Any, tuple[int, Any]] = {}  # id (or a plain value) -> (place, value kept alive)
        self.reason: str | None = None
        self.cls = type("TracedArray", (_Tracer,), {"__slots__": ()})
        self.stand = Recording(self)
        self.stand.name = backend.name

    def stop(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    # ---- arguments: a place in the environment, and the value to run with now
    def _place(self, arg: Any) -> tuple[int, Any]:
        if isinstance(arg, _Tracer):
            if arg.rec is not self:
                raise _Stop("an array of another compiled function's trace")
            return arg.slot, arg.value
        if _holds_tracer(arg):
            return self._built(arg)
        return self._constant(arg), arg

    def _constant(self, value: Any) -> int:
        key: Any = id(value)
        if type(value) in _PLAIN:  # equal numbers: one place (floats by repr: -0.0 is not 0.0)
            key = (type(value), repr(value) if type(value) is float else value)
        found = self.constants.get(key)
        if found is None:
            found = self.constants[key] = (self._new(), value)
        return found[0]

    def _new(self) -> int:
        self.places += 1
        return self.places - 1

    def _built(self, arg: Any) -> tuple[int, Any]:
        """A container holding tracers: a step that builds it from its parts' places."""
        if isinstance(arg, tuple) and hasattr(arg, "_fields"):
            parts, build = list(arg), functools.partial(_named, type(arg))
        elif isinstance(arg, (list, tuple)):
            parts, build = list(arg), functools.partial(_sequence, type(arg))
        elif isinstance(arg, dict):
            parts, build = list(arg.values()), functools.partial(_mapping, type(arg), tuple(arg))
        else:
            names = tuple(f.name for f in dataclasses.fields(arg) if _holds_tracer(getattr(arg, f.name)))
            parts, build = [getattr(arg, n) for n in names], functools.partial(_dataclass, arg, names)
        placed = [self._place(p) for p in parts]
        value = build(*(v for _, v in placed))
        out = self._new()
        self.steps.append(_Step(build, tuple(p for p, _ in placed), out, "a container"))
        return out, value

    # ---- the two kinds of step
    def call(self, name: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A backend method called on the stand-in."""
        if name in _NO_OPS:
            return None
        traced = any(map(_holds_tracer, args)) or any(map(_holds_tracer, kwargs.values()))
        if self.reason is not None or name in _METADATA or not traced:
            return method(*_values(args), **_values(kwargs))  # no input behind it: a constant
        if name == "to_numpy":
            self.stop("arrayq.to_numpy(x) reads the array on the host")
        elif name in _VALUE_SHAPED:
            self.stop(f"{name}: its result's shape depends on the values")
        if self.reason is not None:
            return method(*_values(args), **_values(kwargs))
        if kwargs:  # (the frontend passes arguments by position: these are not lowered)
            fn = functools.partial(_keywords, method, tuple(kwargs), len(args))
            return self._step(fn, (*args, *kwargs.values()), f"backend.{name}")
        return self._step(method, args, f"backend.{name}", name)

    def native(self, fn: Callable[..., Any], args: tuple[Any, ...], what: str) -> Any:
        """An operation of the array library itself on a tracer (indexing, an operator)."""
        if self.reason is None and fn is operator.getitem and _masks(args[1]):
            self.stop("indexing with a boolean array (a shape that depends on the values)")
        if self.reason is not None:
            return fn(*_values(args))
        return self._step(fn, args, what, "getitem" if fn is operator.getitem else None)

    def _step(self, fn: Callable[..., Any], args: tuple[Any, ...], what: str, method: str | None = None) -> Any:
        """Run ``fn`` on the arguments' values now, and record it on their places; a step of
        a backend ``method`` (or indexing) is described for :func:`arrayq._replay.lower`."""
        try:
            placed = [self._place(a) for a in args]
        except _Stop as stop:
            self.stop(str(stop))
            return fn(*_values(args))
        result = fn(*(v for _, v in placed))
        if result is NotImplemented:  # an optional op declined: the frontend's reference follows
            return result
        slots = tuple(p for p, _ in placed)
        if result is None and fn is operator.setitem:
            self.steps.append(_Step(fn, slots, self._new(), what))
            return None
        if self._is_array(result):
            out = self._new()
            step = _Step(fn, slots, out, what)
            if method is not None:
                describe(step, self.backend, method, tuple(v for _, v in placed), fixed_of(args), result)
            self.steps.append(step)
            return self.cls(self, out, result)
        if isinstance(result, (tuple, list)) and all(r is None or self._is_array(r) for r in result):
            outs = tuple(-1 if r is None else self._new() for r in result)
            step = _Step(fn, slots, outs, what)
            if method is not None:  # (a fused op's results: the backend may give a form)
                describe(step, self.backend, method, tuple(v for _, v in placed), fixed_of(args), result)
            self.steps.append(step)
            return type(result)(None if r is None else self.cls(self, o, r) for o, r in zip(outs, result))
        self.stop(f"{what} gave a {type(result).__name__}, not an array (a value read on the host)")
        return result

    def _is_array(self, x: Any) -> bool:
        return _type_cache.get(type(x)) is self.backend or (not isinstance(x, _Tracer) and self.backend.is_array(x))

    # ---- the plan
    def finish(self, outputs: list[Any], donated: frozenset[int]) -> Plan:
        """The plan that replays this recording and returns ``outputs``' places."""
        out_places = []
        for o in outputs:
            if isinstance(o, _Tracer) and o.rec is self:
                out_places.append(o.slot)
            else:  # a constant: a fresh copy each call, as eager code makes a fresh array (and
                # one the caller's, whose first result is this one, cannot change)
                place, dtype = self._new(), self.backend.dtype_of(o)
                kept = self._constant(self.backend.astype(o, dtype, True))
                self.steps.append(_Step(self.backend.astype, (kept, self._constant(dtype)), place, "copy"))
                out_places.append(place)
        steps = lower(self._shared(self.steps, out_places), out_places)
        uses: dict[int, int] = {}
        for step in steps:
            for a in step.args:
                uses[a] = uses.get(a, 0) + 1
        for step in steps:  # a donated input no other step reads: written in place
            x = step.args[0] if step.args else -1
            if step.name == "backend.slice_update" and x in donated and uses[x] == 1 and x not in out_places:
                step.fn = functools.partial(_write_in_place, self.backend.slice_update)
        env = [None] * self.places
        for place, value in self.constants.values():
            env[place] = value
        return Plan(self.inputs, env, steps, out_places, {p for p, _ in self.constants.values()})

    def _shared(self, steps: list[_Step], out_places: list[int]) -> list[_Step]:
        """``steps`` with repeats of a step (the same method on the same places) made once:
        every layer clamps the same cache position. Not where an array is written in place
        (a repeat after the write would see other values)."""
        if any(step.fn is operator.setitem for step in steps):
            return steps
        seen: dict[Any, int] = {}
        alias: dict[int, int] = {}
        kept = []
        results = set(out_places)
        for step in steps:
            step.args = tuple(alias.get(a, a) for a in step.args)
            if type(step.out) is int and step.out not in results:
                key = (step.fn, step.args)
                try:
                    found = seen.setdefault(key, step.out)
                except TypeError:  # an unhashable method
                    found = step.out
                if found != step.out:
                    alias[step.out] = found
                    continue
            kept.append(step)
        return kept


def record(backend: Any, fn: Callable[..., list[Any]], leaves: list[Any], donated: frozenset[int]) -> tuple:
    """Run ``fn`` on ``leaves`` once, recording it: ``(results, plan or None, reason)``; the
    results are the eager ones either way, and the reason says why there is no plan."""
    rec = _Recorder(backend, len(leaves))
    _type_cache[rec.cls] = cast(Any, rec.stand)
    try:
        outputs = fn(*(rec.cls(rec, i, x) for i, x in enumerate(leaves)))
    finally:
        _type_cache.pop(rec.cls, None)
    results = [o.value if isinstance(o, _Tracer) else o for o in outputs]
    if rec.reason is not None:
        return results, None, rec.reason
    return results, rec.finish(outputs, donated), None


# ---- helpers of the steps -----------------------------------------------------------------


def fixed_of(args: tuple[Any, ...]) -> tuple[bool, ...]:
    """For each argument of a step, whether it is a constant of the plan (holds no tracer)."""
    return tuple(not _holds_tracer(a) for a in args)


def _holds_tracer(o: Any) -> bool:
    if isinstance(o, _Tracer):
        return True
    kind = _KINDS.get(type(o))
    if kind is None:
        kind = _kind(type(o))
    if kind == "leaf":
        return False
    if kind == "sequence":
        return any(map(_holds_tracer, o))
    if kind == "dict":
        return any(map(_holds_tracer, o.values()))
    return any(_holds_tracer(getattr(o, name)) for name in kind)


#: type -> "leaf" (holds no array), "sequence", "dict", or a dataclass's field names
_KINDS: dict[type, Any] = dict.fromkeys((int, float, complex, bool, str, bytes, type(None), slice), "leaf")


def _kind(t: type) -> Any:
    if issubclass(t, (list, tuple)):
        kind: Any = "sequence"
    elif issubclass(t, dict):
        kind = "dict"
    elif dataclasses.is_dataclass(t):
        kind = tuple(f.name for f in dataclasses.fields(t))
    elif _type_cache.get(t) is not None or t is type(Ellipsis):  # a backend's array, ...
        kind = "leaf"
    else:
        return "leaf"  # anything else (not kept: an unknown type may become an array type)
    if len(_KINDS) < 256:  # bounded: types are few
        _KINDS[t] = kind
    return kind


def _values(o: Any) -> Any:
    """``o`` with its tracers replaced by their arrays (containers rebuilt only where needed)."""
    if isinstance(o, _Tracer):
        return o.value
    if not _holds_tracer(o):
        return o
    if isinstance(o, tuple) and hasattr(o, "_fields"):
        return _named(type(o), *map(_values, o))
    if isinstance(o, (list, tuple)):
        return _sequence(type(o), *map(_values, o))
    if isinstance(o, dict):
        return _mapping(type(o), tuple(o), *map(_values, o.values()))
    names = tuple(f.name for f in dataclasses.fields(o))
    return _dataclass(o, names, *(_values(getattr(o, n)) for n in names))


def _masks(key: Any) -> bool:
    """Whether an index holds a boolean array (numpy's mask indexing)."""
    parts = key if isinstance(key, tuple) else (key,)
    return any(isinstance(p, _Tracer) and p.value.dtype == np.bool_ for p in parts)


def _named(cls: type, *parts: Any) -> Any:
    return cls(*parts)


def _sequence(cls: type, *parts: Any) -> Any:
    return cls(parts)


def _mapping(cls: type, keys: tuple, *parts: Any) -> Any:
    return cls(zip(keys, parts))


def _dataclass(template: Any, names: tuple[str, ...], *parts: Any) -> Any:
    """A copy of the dataclass ``template`` with ``names`` set to ``parts``: not re-validated
    (it was when traced; the replay's arrays have the same shapes and dtypes)."""
    out = copy.copy(template)
    for n, p in zip(names, parts):
        object.__setattr__(out, n, p)
    return out


def _keywords(method: Callable[..., Any], names: tuple[str, ...], positional: int, *args: Any) -> Any:
    return method(*args[:positional], **dict(zip(names, args[positional:])))


#: ``(slice(None),) * axis`` for the axes a cache write may name, made once (building it
#: on each write cost ~0.8 us of a decode step's 56 cache writes' ~4 us each)
_WHOLE_AXES = tuple((slice(None),) * axis for axis in range(64))  # (NumPy: at most 64 axes)


def _write_in_place(copying: Callable[..., Any], x: Any, update: Any, start: Any, axis: int) -> Any:
    """``slice_update`` of a donated array: written into ``x`` itself where it takes slice
    assignment (the backend is eager: ``start`` may be read), else the backend's copy."""
    try:
        begin = int(start)
        x[_WHOLE_AXES[axis] + (slice(begin, begin + update.shape[axis]),)] = update
        return x
    except (TypeError, ValueError):  # read-only, or arrays that take no assignment
        return copying(x, update, start, axis)
