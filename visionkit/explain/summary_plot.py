"""A `ModelSummary` as a PNG: per-layer parameters, MACs, activation memory and receptive field."""

from __future__ import annotations

import os
from pathlib import Path

from visionkit.explain.summary import ModelSummary
from visionkit.fileio import atomic_write_with

MAX_LABELS = 80  # x-axis labels that fit a readable plot


def plot_summary(summary: ModelSummary, path: str | os.PathLike, title: str = "") -> Path:
    """Four panels over the layers in call order; write the PNG atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = summary.layers
    x = range(len(rows))
    fig = Figure(figsize=(max(8.0, 0.16 * min(len(rows), MAX_LABELS) + 2), 9.5),
                 layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(4, 1, sharex=True)
    panels = [("parameters", [r.params for r in rows], "tab:blue"),
              ("MACs", [r.macs for r in rows], "tab:orange"),
              ("output MiB (fp32)", [r.activation_bytes / 2**20 for r in rows], "tab:green")]
    for ax, (label, values, colour) in zip(axes, panels):
        ax.bar(x, values, color=colour, width=0.8)
        if label != "output MiB (fp32)":
            ax.set_yscale("log")  # zero-cost layers show no bar
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    rf = [max(a.size for a in r.field) if r.field else float("nan") for r in rows]
    jump = [max(a.jump for a in r.field) if r.field and r.field[0].jump else float("nan") for r in rows]
    axes[3].plot(x, rf, marker=".", color="tab:red", label="receptive field (px)")
    axes[3].plot(x, jump, marker=".", color="tab:purple", label="jump (px)")
    axes[3].set_ylabel("input pixels")
    axes[3].legend(loc="upper left", fontsize=8)
    axes[3].grid(alpha=0.3)
    step = -(-len(rows) // MAX_LABELS)  # a long model labels every step-th layer, legibly
    axes[3].set_xticks(list(x)[::step], [f"{i} {_short(rows[i].name)} {rows[i].type}"
                                         for i in list(x)[::step]], rotation=90, fontsize=7)
    axes[3].set_xlabel(f"layer in call order{f' (every {step}th labelled)' if step > 1 else ''}")
    totals = summary.totals()
    fig.suptitle(f"{title}  {totals['params'] / 1e6:.1f} M params, {totals['macs'] / 1e9:.2f} G MACs, "
                 f"input {'x'.join(map(str, summary.input_shapes[0][-3:]))}".strip())
    return atomic_write_with(path, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))


def _short(name: str, parts: int = 2) -> str:
    return ".".join(name.split(".")[-parts:])
