"""A `ModelSummary` as a terminal table, CSV text or JSON text."""

from __future__ import annotations

import csv
import io
import json

from visionkit.explain.summary import ModelSummary

COLUMNS = ("name", "type", "output_shape", "params", "macs", "activation_bytes", "rf", "jump", "start")


def human(n: float, unit: str = "", base: int = 1000) -> str:
    """`n` with a k/M/G/T prefix (Ki/Mi/Gi/Ti when base is 1024)."""
    prefixes = ["", "k", "M", "G", "T"] if base == 1000 else ["", "Ki", "Mi", "Gi", "Ti"]
    i = 0
    while abs(n) >= base and i < len(prefixes) - 1:
        n /= base
        i += 1
    return f"{n:.0f} {unit}".strip() if i == 0 else f"{n:.1f} {prefixes[i]}{unit}"


def _cell(value: object, sep: str = "x") -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        if value and isinstance(value[0], list):
            return ", ".join(_cell(v) for v in value)
        return sep.join(_cell(v) for v in value)
    return str(value)


def format_table(summary: ModelSummary) -> str:
    """Aligned per-layer table with a totals footer."""
    header = ["layer", "type", "output", "params", "MACs", "memory", "rf", "jump", "start"]
    rows = [[d["name"], d["type"], _cell(d["output_shape"]), f"{d['params']:,}", human(d["macs"]),
             human(d["activation_bytes"], "B", 1024), _cell(d["rf"], "/"), _cell(d["jump"], "/"),
             _cell(d["start"], "/")] for d in (r.to_dict() for r in summary.layers)]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    right = {3, 4, 5, 6, 7, 8}

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "-" * len(line(header))
    totals = summary.totals()
    inputs = ", ".join(_cell(s) for s in summary.input_shapes)
    footer = [rule, f"input {inputs}: {totals['params']:,} parameters ({human(totals['params'])}), "
              f"{human(totals['macs'])} MACs ({human(2 * totals['macs'])} FLOPs), "
              f"{human(totals['activation_bytes'], 'B', 1024)} of layer outputs at fp32"]
    if summary.unused_params:
        footer.append(f"{summary.unused_params:,} parameters were not used by this forward pass")
    footer.append("rf/jump/start: receptive field size, stride and first centre in input pixels "
                  "(h/w when they differ; '-' unknown; no jump once global)")
    return "\n".join([line(header), rule, *(line(r) for r in rows), *footer])


def format_csv(summary: ModelSummary) -> str:
    """One CSV row per layer (shapes as `1x64x56x56`, per-axis values as `h/w`), then totals."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in summary.layers:
        d = row.to_dict()
        writer.writerow([_cell(d[c], "/") if c in ("rf", "jump", "start") else _cell(d[c])
                         for c in COLUMNS])
    totals = summary.totals()
    writer.writerow(["total", "", "", totals["params"], totals["macs"], totals["activation_bytes"],
                     "", "", ""])
    return buffer.getvalue()


def format_json(summary: ModelSummary) -> str:
    """`{"input_shapes", "layers": [...], "totals": {...}, "unused_params"}` as indented JSON."""
    return json.dumps(summary.to_dict(), indent=1)
