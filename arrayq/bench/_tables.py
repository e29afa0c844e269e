"""The benchmarks' rows as text tables (one per benchmark) and as a bar chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def format_table(rows: list[dict[str, Any]], baseline: str = "arrayq numpy") -> str:
    """A text table of quantized-matmul rows; each row's ``vs arrayq`` is its time over the
    baseline's time in the same case (so > 1 means arrayq is faster)."""
    lines = [f"{'case':<20} {'implementation':<44} {'median':>10} {'vs arrayq':>10} {'peak extra':>11}"]
    base = {r["case"]: r["median_s"] for r in rows if r["name"] == baseline}
    for r in rows:
        ratio = r["median_s"] / base[r["case"]] if r["case"] in base else float("nan")
        peak = f"{r['peak_extra_MiB']:.1f} MiB" if "peak_extra_MiB" in r else ""
        lines.append(f"{r['case']:<20} {r['name']:<44} {_duration(r['median_s']):>10} {ratio:>9.2f}x {peak:>11}")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    """``812 µs`` below 10 ms, ``37.8 ms`` above."""
    return f"{seconds * 1e6:.0f} µs" if seconds < 0.01 else f"{seconds * 1e3:.1f} ms"


def format_dispatch_table(rows: list[dict[str, Any]]) -> str:
    """A text table of dispatch rows: µs per op, arrayq's overhead over the row it is compared
    with (the library directly, or the backend's op), and where measured the frontend alone."""
    width = max([34] + [len(r["case"]) for r in rows])
    lines = [f"{'case':<{width}} {'implementation':<18} {'per op':>13} {'overhead':>14} {'frontend alone':>15}"]
    for r in rows:
        over = f"{r['overhead_us']:+.2f} µs/op" if "overhead_us" in r else ""
        alone = f"{r['frontend_us']:.2f} µs/op" if "frontend_us" in r else ""
        lines.append(f"{r['case']:<{width}} {r['name']:<18} {r['median_s'] * 1e6:>10.2f} µs {over:>14} {alone:>15}")
    return "\n".join(lines)


def format_generate_table(rows: list[dict[str, Any]]) -> str:
    """A text table of generation rows: tokens per second (best of the timed runs)."""
    lines = [f"{'case':<22} {'engine':<18} {'tokens':>7} {'tok/s':>10} {'peak RSS':>10}"]
    for r in rows:
        lines.append(
            f"{r['case']:<22} {r['name']:<18} {r['tokens']:>7} {r['tokens_per_s']:>10.2f} {r['peak_rss_MiB']:>6.0f} MiB"
        )
    return "\n".join(lines)


def format_rows(rows: list[dict[str, Any]]) -> str:
    """All rows as text, one table per benchmark."""
    out = []
    for bench, fmt, title in (
        ("quantized", format_table, "quantized matmul, 4-bit gs64 weight (median time per call)"),
        ("dispatch", format_dispatch_table, "dispatch overhead (median time per op)"),
        ("generate", format_generate_table, "token generation (best of the timed runs)"),
    ):
        part = [r for r in rows if r.get("bench", "quantized") == bench]
        if part:
            out.append(f"{title}\n{fmt(part)}")
    return "\n\n".join(out)


MATPLOTLIB_MISSING = "--plot needs matplotlib: pip install 'arrayq[plot]' (or pip install matplotlib)"


def plot(rows: list[dict[str, Any]], path: str | Path) -> None:
    """A bar chart of the rows, one panel per benchmark and one bar per implementation in
    each case, written to ``path`` (PNG). Times on a log scale. Needs matplotlib (the
    ``plot`` extra); raises RuntimeError saying so when it is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError(MATPLOTLIB_MISSING) from None

    panels = [
        (
            "quantized",
            "quantized matmul, 4-bit gs64 (median ms per call, log scale)",
            "median_s",
            1e3,
            True,
        ),
        ("dispatch", "dispatch overhead (median µs per op, log scale)", "median_s", 1e6, True),
        ("generate", "token generation (tokens/s, best run)", "tokens_per_s", 1.0, False),
    ]
    panels = [p for p in panels if any(r.get("bench", "quantized") == p[0] for r in rows)]
    if not panels:
        raise ValueError("no rows to plot")

    def count(bench: str) -> int:  # bars plus one heading line per case
        part = [r for r in rows if r.get("bench", "quantized") == bench]
        return len(part) + len({r["case"] for r in part})

    heights = [0.8 + 0.24 * count(p[0]) for p in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, sum(heights)), gridspec_kw={"height_ratios": heights})
    axes = list(axes) if len(panels) > 1 else [axes]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (bench, title, key, scale, log) in zip(axes, panels):
        part = [r for r in rows if r.get("bench", "quantized") == bench]
        names = list(dict.fromkeys(r["name"] for r in part))
        y = 0
        ticks, labels, bold = [], [], []
        for case in dict.fromkeys(r["case"] for r in part):
            ticks.append(y)  # the case as a heading line, its implementations' bars below it
            labels.append(case)
            bold.append(True)
            y -= 1
            for r in (r for r in part if r["case"] == case):
                v = r[key] * scale
                ax.barh(y, v, color=colors[names.index(r["name"]) % len(colors)], height=0.75)
                ax.text(v, y, f" {v:,.0f}" if v >= 100 else f" {v:.3g}", va="center", fontsize=8)
                ticks.append(y)
                labels.append(r["name"])
                bold.append(False)
                y -= 1
        ax.set_yticks(ticks, labels, fontsize=8)
        for tick, is_case in zip(ax.get_yticklabels(), bold):
            if is_case:
                tick.set_fontweight("bold")
        ax.tick_params(axis="y", length=0)
        ax.set_ylim(y + 0.4, 0.6)
        ax.set_title(title, fontsize=10, loc="left")
        if log:
            ax.set_xscale("log")
        ax.margins(x=0.12)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
