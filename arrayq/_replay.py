"""A recorded plan (:mod:`arrayq._plan`) made cheap to replay, and its replay.

When a recording finishes, its steps are *lowered* (:func:`lower`) before the plan is made:

* **Steps that change nothing are dropped.** By the contract's meaning of the method, a
  step whose result has its first argument's values (``reshape`` or ``squeeze`` or
  ``broadcast_to`` to the same shape, ``permute_dims`` by the identity, ``astype`` to the
  same dtype with ``copy=False``, indexing with slices that keep every element) is left
  out and its readers read the argument instead. Not a step whose result the plan
  returns (a result stays a new array), nor anything in a plan that writes into an array
  (``x[key] = v``: there a view and its base are not interchangeable).
* **Steps take the backend's replay form.** :meth:`arrayq.backend.Backend.replay_form`
  may offer, for one recorded call, a callable that gives the same result for arrays of
  the recorded shapes and dtypes, with the static arguments bound (NumPy: ``x.reshape``
  with the shape bound instead of the backend's ``reshape`` and NumPy's function around
  it, the ufunc itself instead of ``binary``'s checks). The form is asked while
  recording, when the arguments' values are at hand; it is used for every replay.

Both keep the plan's promise: a replay gives the results the function gives eagerly, bit
for bit (the same kernels run on the same values).
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Callable
from typing import Any

#: Backend methods whose result has the first argument's values when their shapes and
#: dtypes agree (beside the identity permutation, ``astype`` without a copy and indexing).
_SAME_WHEN_SAME_SHAPE = frozenset({"reshape", "squeeze", "broadcast_to"})


class Declined(Exception):
    """A recorded native op returned NotImplemented on replay (its choice depends on values)."""


@dataclasses.dataclass
class _Step:
    fn: Callable[..., Any]
    args: tuple[int, ...]
    out: int | tuple[int, ...]  # a place, or places for a tuple of results (-1: None there)
    name: str
    #: the backend's replay form: a callable and the positions of the arguments it takes
    form: tuple[Callable[..., Any], tuple[int, ...]] | None = None
    #: whether the result has the first argument's values (a step that changes nothing)
    same: bool = False


def describe(
    step: _Step, backend: Any, method: str, values: tuple[Any, ...], fixed: tuple[bool, ...], result: Any
) -> None:
    """Note on a recorded ``step`` (``method`` of ``backend``, or ``"getitem"`` for
    indexing, called on ``values``; ``fixed[i]``: whether argument i is a constant of the
    plan) whether it changes nothing and the backend's replay form of it."""
    step.same = _unchanged(backend, method, values, result)
    if method == "getitem":
        return
    form = backend.replay_form(method, values, fixed, result)
    if form is None:
        return
    fn, positions = form
    dropped = [i for i, f in enumerate(fixed) if not f and i not in positions]
    if not callable(fn) or dropped:
        raise TypeError(
            f"{type(backend).__name__}.replay_form({method!r}) gave {form!r}: it must be None or "
            f"(callable, positions) with every argument that is not fixed among the positions (missing: {dropped})"
        )
    step.form = (fn, tuple(positions))


def _unchanged(backend: Any, method: str, values: tuple[Any, ...], result: Any) -> bool:
    if not values or not backend.is_array(values[0]):
        return False
    x = values[0]
    if type(x) is not type(result) or tuple(x.shape) != tuple(result.shape):  # (NumPy: x[()] is a scalar)
        return False
    if backend.dtype_of(x) != backend.dtype_of(result):
        return False
    if method in _SAME_WHEN_SAME_SHAPE:
        return True
    if method == "permute_dims":
        return tuple(values[1]) == tuple(range(len(x.shape)))
    if method == "astype":
        return len(values) == 3 and values[2] is False
    if method == "getitem":
        parts = values[1] if type(values[1]) is tuple else (values[1],)
        # (slices of step 1 that keep each axis's length take all of it)
        return all(p is Ellipsis or (type(p) is slice and p.step in (None, 1)) for p in parts)
    return False


def lower(steps: list[_Step], outputs: list[int]) -> list[_Step]:
    """``steps`` with those that change nothing dropped (their readers read the argument)
    and the backend's replay forms in place of the methods (see the module)."""
    writes = any(step.fn is operator.setitem for step in steps)
    results = set(outputs)
    alias: dict[int, int] = {}
    kept = []
    for step in steps:
        step.args = tuple(alias.get(a, a) for a in step.args)
        if step.same and not writes and type(step.out) is int and step.out not in results:
            alias[step.out] = step.args[0]
            continue
        if step.form is not None:
            fn, positions = step.form
            step.fn, step.args = fn, tuple(step.args[i] for i in positions)
        kept.append(step)
    return kept


def _reuse_places(
    inputs: int, steps: list[_Step], outputs: list[int], constants: set[int]
) -> tuple[list[tuple], list[int]]:
    """The steps as ``(fn, args, out)`` with each result's place taken from those whose
    arrays nothing reads any more (so that a replay holds only live arrays: writing a place
    drops its old array), and the outputs' new places."""
    last: dict[int, int] = {}
    for i, step in enumerate(steps):
        for a in step.args:
            if a not in constants:
                last[a] = i
    for place in outputs:
        last.pop(place, None)
    moved = {p: p for p in (*range(inputs), *constants)}
    free: list[int] = []
    top = max(moved, default=-1) + 1
    out = []
    for i, step in enumerate(steps):
        args = tuple(moved[a] for a in step.args)
        for a in dict.fromkeys(step.args):  # (once each)
            if last.get(a) == i:
                free.append(moved[a])
        places = []
        for o in (step.out,) if isinstance(step.out, int) else step.out:
            if o < 0:
                places.append(-1)
                continue
            if free:
                moved[o] = free.pop()
            else:
                moved[o], top = top, top + 1
            places.append(moved[o])
        out.append((step.fn, args, places[0] if type(step.out) is int else tuple(places)))
    return out, [moved[o] for o in outputs]


class Plan:
    """The recorded steps of one signature: call it with the signature's arrays.

    The steps run as one generated Python function (:func:`_source`): each place is a local
    variable, each step one call of its function on them, so a replay costs the steps'
    calls and nothing per step besides (no loop over a step list, no argument tuples). A
    warning a step raises (NumPy's ``overflow encountered``) costs more than from a small
    function: Python finds the warning's line by scanning the code up to the call (about
    0.1 ms in a plan of 2000 steps)."""

    def __init__(
        self, inputs: int, env: list[Any], steps: list[_Step], outputs: list[int], constants: set[int]
    ) -> None:
        self.inputs = inputs
        self.steps, self.outputs = _reuse_places(inputs, steps, outputs, constants)
        self.names = [s.name for s in steps]
        fixed = sorted(constants)
        namespace: dict[str, Any] = {}
        source = _source(inputs, self.steps, [s.form is None for s in steps], self.outputs, fixed)
        exec(compile(source, "<arrayq recorded plan>", "exec"), namespace)
        fns = [fn for fn, _, _ in self.steps]
        declined = functools.partial(_declined, self.names)  # (not a method: no cycle through the plan)
        self._replay = namespace["make"](fns, [env[p] for p in fixed], NotImplemented, declined)

    def __len__(self) -> int:
        return len(self.steps)

    def __call__(self, *leaves: Any) -> list[Any]:
        return self._replay(*leaves)


def _declined(names: list[str], i: int) -> None:
    raise Declined(f"{names[i]} declined on replay")


def _source(inputs: int, steps: list[tuple], may_decline: list[bool], outputs: list[int], fixed: list[int]) -> str:
    """The text of ``make(fns, constants, not_implemented, declined)``, which returns the
    replay function of ``steps`` (``(fn, args, out)``, places as in :func:`_reuse_places`):
    the inputs are its parameters ``v0``..., the constants and step functions variables of
    ``make`` (read from the closure), the results of the steps its locals. Only names made
    here from numbers are in the text. The replay's body is one line, so that a warning
    its steps raise (NumPy's ``overflow encountered``) has one place, as from a loop: shown
    once, not once per step."""
    body = []
    for i, (_, args, out) in enumerate(steps):
        result = f"v{out}" if type(out) is int else "r"
        body.append(f"{result} = f{i}({', '.join(f'v{a}' for a in args)})")
        if may_decline[i]:  # an optional op that ran when recorded declines now
            body.append(f"{result} is not_implemented and declined({i})")
        if type(out) is not int:
            body.append(f"{''.join(f'v{o}, ' if o >= 0 else '_, ' for o in out)}= r")
    body.append(f"return [{', '.join(f'v{o}' for o in outputs)}]")
    lines = ["def make(fns, constants, not_implemented, declined):"]
    if steps:
        lines.append(f"    {''.join(f'f{i}, ' for i in range(len(steps)))}= fns")
    if fixed:
        lines.append(f"    {''.join(f'v{p}, ' for p in fixed)}= constants")
    lines.append(f"    def replay({', '.join(f'v{i}' for i in range(inputs))}):")
    lines.append(f"        {'; '.join(body)}")
    lines.append("    return replay")
    return "\n".join(lines)
