"""Runs conformance cases on a backend and reports per op.

Each case runs twice through the arrayq frontend: on the reference (NumPy's primitives
with the contract's own composites, :mod:`._reference`, so that the NumPy backend's fast
paths are checked too) and on the backend under test, with the same inputs moved to each.
Results are brought back with ``to_numpy`` (which evaluates lazy backends) and compared as
the case says. Declared gaps (``Backend.declared_gaps``) turn a case into a skip with the
reason. A case that expects an error names the exception type both must raise and, where
it matters, what the message must say.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import re
import sys
import warnings
from collections.abc import Callable, Iterable
from typing import Any, TextIO

import numpy as np

from ._reference import reference_backend
from .cases import TOLERANCE, Case, all_cases


@dataclasses.dataclass
class CaseResult:
    id: str
    op: str
    status: str  # "pass", "fail" or "skip"
    error: float | None = None  # normalised error vs the reference (close cases)
    message: str = ""


@dataclasses.dataclass
class Report:
    backend: str
    device: Any
    results: list[CaseResult]
    #: The versions of the backend's libraries (:func:`library_versions`), named in the table.
    versions: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def failed(self) -> list[CaseResult]:
        return [r for r in self.results if r.status == "fail"]

    def counts(self) -> dict[str, int]:
        out = {"pass": 0, "fail": 0, "skip": 0}
        for r in self.results:
            out[r.status] += 1
        return out

    def by_op(self) -> list[dict[str, Any]]:
        """One row per op: status (fail beats pass beats skip), counts, worst error, and
        the first failure's or skip's message."""
        rows: dict[str, dict[str, Any]] = {}
        for r in self.results:
            row = rows.setdefault(r.op, {"op": r.op, "pass": 0, "fail": 0, "skip": 0, "worst_error": None, "note": ""})
            row[r.status] += 1
            if r.error is not None:
                row["worst_error"] = max(row["worst_error"] or 0.0, r.error)
            if r.status == "fail" and not row["fail"] - 1:
                row["note"] = f"{r.id}: {r.message}"
            elif r.status == "skip" and not row["note"]:
                row["note"] = r.message
        for row in rows.values():
            row["status"] = "FAIL" if row["fail"] else "pass" if row["pass"] else "skipped"
        return sorted(rows.values(), key=lambda row: (row["status"] != "FAIL", row["op"]))

    def table(self) -> str:
        lines = [f"{'op':<20} {'status':<8} {'pass':>5} {'fail':>5} {'skip':>5} {'worst err':>10}  note"]
        for row in self.by_op():
            err = "-" if row["worst_error"] is None else f"{row['worst_error']:.2e}"
            counts = f"{row['pass']:>5} {row['fail']:>5} {row['skip']:>5}"
            lines.append(f"{row['op']:<20} {row['status']:<8} {counts} {err:>10}  {row['note'][:100]}")
        c = self.counts()
        if self.versions:
            lines.append("libraries: " + ", ".join(f"{name} {v}" for name, v in self.versions.items()))
        lines.append(
            f"{self.backend}{'' if self.device is None else ' on ' + str(self.device)}: "
            f"{c['pass']} passed, {c['fail']} failed, {c['skip']} skipped (declared gaps)"
        )
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(
            {
                "backend": self.backend,
                "device": None if self.device is None else str(self.device),
                "versions": self.versions,
                "counts": self.counts(),
                "ops": self.by_op(),
                "cases": [dataclasses.asdict(r) for r in self.results],
            },
            indent=1,
        )


def library_versions(backend: Any) -> dict[str, str]:
    """The installed versions of ``backend.library_packages`` (by default the distribution of
    its ``library_module``'s top-level package), e.g. ``{"jax": "0.6.2", "jaxlib": "0.6.2"}``."""
    from importlib import metadata

    names = backend.library_packages or ((backend.library_module or "").split(".")[0],)
    out = {}
    for name in filter(None, names):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


def _leaves(value: Any) -> list[Any]:
    from ..quant import QuantizedWeight

    if isinstance(value, QuantizedWeight):
        return [value.packed, value.scales, value.biases]
    if isinstance(value, (tuple, list)):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def _host(aq: Any, leaf: Any) -> Any:
    return None if leaf is None else aq.to_numpy(leaf)


def _bits(a: np.ndarray) -> np.ndarray:
    """The raw bits of a float array (so NaNs and signed zeros compare exactly)."""
    return a.view(f"u{a.dtype.itemsize}") if a.dtype.kind in "fcV" else a


def _compare(case: Case, got: list[Any], ref: list[Any]) -> tuple[bool, float | None, str]:
    if len(got) != len(ref):
        return False, None, f"returned {len(got)} arrays, the reference {len(ref)}"
    worst = None
    for i, (g, r) in enumerate(zip(got, ref)):
        where = f"output {i}: " if len(ref) > 1 else ""
        if r is None or g is None:
            if (r is None) != (g is None):
                return False, None, f"{where}got {g!r}, reference {r!r}"
            continue
        g, r = np.asarray(g), np.asarray(r)
        if g.shape != r.shape:
            return False, None, f"{where}shape {g.shape}, reference {r.shape}"
        if g.dtype != r.dtype:
            return False, None, f"{where}dtype {g.dtype}, reference {r.dtype}"
        if case.expect == "exact" or r.dtype.kind in "biu":
            if not np.array_equal(_bits(g), _bits(r)):
                differs = _bits(g) != _bits(r)
                first = tuple(int(i) for i in np.argwhere(differs)[0]) if r.ndim else ()
                return (
                    False,
                    None,
                    (
                        f"{where}{int(np.count_nonzero(differs))} of {r.size} elements differ (exact match required); "
                        f"first at {first}: got {g[first]!r}, reference {r[first]!r}"
                    ),
                )
            continue
        gf, rf = (
            g.astype(np.complex128 if r.dtype.kind == "c" else np.float64),
            r.astype(np.complex128 if r.dtype.kind == "c" else np.float64),
        )
        if not np.array_equal(np.isnan(gf), np.isnan(rf)):
            return False, None, f"{where}NaN where the reference has none (or the reverse)"
        ok = ~np.isnan(rf)
        scale = max(1.0, float(np.max(np.abs(rf[ok]), initial=0.0)))
        # equal values (infinities included) differ by 0; NaN positions were checked above
        with np.errstate(invalid="ignore"):  # (inf - inf, discarded by the where)
            diff = np.where(ok & (gf != rf), np.abs(gf - np.where(ok, rf, 0)), 0.0)
        err = float(np.max(diff, initial=0.0)) / scale
        worst = err if worst is None else max(worst, err)
        tol = case.tolerance or TOLERANCE[str(r.dtype)]
        if err > tol:
            at = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
            return (
                False,
                err,
                (
                    f"{where}error {err:.3g} > tolerance {tol:g} for {r.dtype}; "
                    f"worst at {at}: got {g[at]!r}, reference {r[at]!r}"
                ),
            )
    return True, worst, ""


def _gap(case: Case, gaps: dict[str, str]) -> str | None:
    for key in (case.op, *case.dtypes):
        if key in gaps:
            return f"declared gap {key!r}: {gaps[key]}"
    return None


def _upcast(args: list[Any]) -> list[Any]:
    return [
        a.astype(np.float32)
        if isinstance(a, np.ndarray)
        and a.dtype.kind == "f"
        and a.dtype.itemsize == 2
        or isinstance(a, np.ndarray)
        and str(a.dtype) == "bfloat16"
        else a
        for a in args
    ]


def _raised(case: Case, exc: BaseException) -> str | None:
    """Why ``exc`` is not the error ``case`` expects (None if it is)."""
    if case.raises and not any(cls.__name__ == case.raises for cls in type(exc).__mro__):
        return f"raised {type(exc).__name__}: {exc}; the case requires {case.raises}"
    if case.match and not re.search(case.match, str(exc)):
        return f"raised {type(exc).__name__}: {exc}; the message must match {case.match!r}"
    return None


def run_case(case: Case, backend: Any, device: Any = None, reference: Any = None) -> CaseResult:
    """Run one case on ``backend`` (a Backend) and on ``reference`` (default: the
    conformance reference, :func:`._reference.reference_backend`), and compare."""
    import arrayq as aq

    if reference is None:
        with reference_backend() as ref_backend:
            return run_case(case, backend, device, ref_backend)
    gap = _gap(case, backend.gaps(device))
    if gap:
        return CaseResult(case.id, case.op, "skip", message=gap)
    with aq.default_backend(reference), warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # NumPy warns on empty means etc.; the values are what count
        try:
            args = case.make(np.random.default_rng(case.seed))
        except Exception as exc:
            return CaseResult(case.id, case.op, "fail", message=f"making the inputs raised {exc!r}: the case is wrong")
        try:
            ref = case.call(aq, *aq.to_backend(_upcast(args) if case.upcast else args, reference))
            ref_error = None
        except Exception as exc:
            ref, ref_error = None, exc
    if case.expect == "raises":
        if ref_error is None:
            return CaseResult(case.id, case.op, "fail", message="the reference did not raise: the case is wrong")
        why = _raised(case, ref_error)
        if why:
            return CaseResult(
                case.id,
                case.op,
                "fail",
                message=f"the reference {why} (the case or arrayq's own checks are wrong)"[:400],
            )
    elif ref_error is not None:
        return CaseResult(case.id, case.op, "fail", message=f"the reference raised {ref_error!r}: the case is wrong")
    try:
        with aq.default_backend(backend, device), warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            moved = aq.to_backend(args, backend, device)
            got = case.call(aq, *moved)
            got_leaves = [_host(aq, leaf) for leaf in _leaves(got)]
    except Exception as exc:
        if case.expect == "raises" and isinstance(exc, type(ref_error)):
            why = _raised(case, exc)
            return CaseResult(case.id, case.op, "fail" if why else "pass", message=(why or "")[:400])
        expected = f"; the reference raises {type(ref_error).__name__}" if ref_error else ""
        return CaseResult(case.id, case.op, "fail", message=f"raised {type(exc).__name__}: {exc}{expected}"[:400])
    if case.expect == "raises":
        return CaseResult(
            case.id,
            case.op,
            "fail",
            message=f"did not raise; the reference raises {type(ref_error).__name__}: {ref_error}"[:400],
        )
    ref_leaves = [_host(aq, leaf) for leaf in _leaves(ref)]
    if case.upcast:
        dtype = args[0].dtype
        ref_leaves = [r.astype(dtype) if r is not None and r.dtype.kind == "f" else r for r in ref_leaves]
    # Indices, counts and integer sums come in each backend's default integer dtype
    # (int64 on NumPy, int32 on MLX); the array API leaves that choice to the library.
    # Sums of small unsigned integers likewise come in the unsigned type of that width.
    ref_int, own_int = reference.default_int.name, backend.default_int.name
    for ref_t, own_t in ((ref_int, own_int), ("u" + ref_int, "u" + own_int)):
        if ref_t != own_t and ref_t not in case.dtypes:
            ref_leaves = [r.astype(own_t) if r is not None and str(r.dtype) == ref_t else r for r in ref_leaves]
    ok, err, message = _compare(case, got_leaves, ref_leaves)
    return CaseResult(case.id, case.op, "pass" if ok else "fail", err, message)


def context_results(backend: Any, device: Any = None) -> list[CaseResult]:
    """The default-backend context: creation inside ``default_backend`` lands on the
    backend, and leaving the block restores the previous default."""
    import arrayq as aq

    before = aq.current_backend()
    try:
        with aq.default_backend(backend, device), warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            inside = aq.backend_of(aq.zeros((2,), dtype=aq.float32))
        ok = inside is backend and aq.current_backend() is before
        message = (
            ""
            if ok
            else f"zeros() inside the block went to {inside!r}; after it the default is {aq.current_backend()!r}"
        )
    except Exception as exc:
        ok, message = False, f"raised {type(exc).__name__}: {exc}"
    return [CaseResult("default_backend[context]", "default_backend", "pass" if ok else "fail", message=message)]


def select(cases: Iterable[Case], pattern: str | None) -> list[Case]:
    """Cases whose id contains ``pattern`` or matches it as a glob (like pytest's -k, simplified)."""
    if not pattern:
        return list(cases)
    glob = re.compile(fnmatch.translate(pattern))
    return [c for c in cases if pattern in c.id or glob.match(c.id)]


def run(
    backend: Any, device: Any = None, pattern: str | None = None, progress: Callable[[int, int], None] | None = None
) -> Report:
    """Run the suite (or the cases matching ``pattern``) on ``backend`` (a name or a
    Backend) and return the Report."""
    import arrayq as aq

    b = aq.get_backend(backend)
    if device is not None:
        b.check_device(device)
    cases = select(all_cases(), pattern)
    results = []
    with reference_backend() as reference:
        for i, case in enumerate(cases):
            results.append(run_case(case, b, device, reference))
            if progress:
                progress(i + 1, len(cases))
    if not pattern or "default_backend" in pattern:
        results += context_results(b, device)
    return Report(b.name, device, results, library_versions(b))


def progress_bar(stream: TextIO = sys.stderr) -> Callable[[int, int], None]:
    """A one-line text progress bar, redrawn in place (only on a terminal)."""

    def show(done: int, total: int) -> None:
        if not stream.isatty() and done != total:
            return
        width = 30
        filled = width * done // max(total, 1)
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done == total:
            stream.write("\n")
        stream.flush()

    return show
