"""``evonas report RUN_DIR``: one self-contained HTML page about a run.

Everything is inside the file (plots as embedded PNG data, no fonts, styles or scripts fetched
from anywhere), so it opens offline and can be mailed: the configuration, every plot of the run
(drawn first if missing), the best genomes as a table, the decoded best network's layers (type,
output shape, parameters), timings per worker, and the failures grouped by reason.

Example::

    path = write_report("runs/quickstart-20261128-064700")   # RUN_DIR/report.html
"""

from __future__ import annotations

import base64
import html
import math
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

__all__ = ["write_report"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.9em; } td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
th { background: #f3f3f3; } pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; } .num { text-align: right; font-variant-numeric: tabular-nums; }
"""


# Marks the page once loaded: how many of its images the browser decoded (read by the browser test).
_CHECK = """<script>window.addEventListener("load", () => { const imgs = Array.from(document.images);
document.body.dataset.imagesLoaded = imgs.filter(i => i.complete && i.naturalWidth > 0).length + "/" + imgs.length; });</script>"""


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{_fmt(v)}</td>' if isinstance(v, (int, float)) else f"<td>{html.escape(str(v))}</td>"
                         for v in row) + "</tr>"
        for row in rows
    )  # fmt: skip
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return html.escape(str(v))
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:.4g}" if math.isfinite(v) else str(v)


def _layers(model: Any, input_shape: tuple[int, ...]) -> list[list[Any]]:
    """Leaf modules of ``model`` in call order: name, type, output shape, parameters."""
    import torch

    rows: list[list[Any]] = []
    hooks = []
    for name, module in model.named_modules():
        if next(module.children(), None) is None:
            def hook(mod: Any, args: Any, out: Any, name: str = name) -> None:
                shape = tuple(out.shape) if isinstance(out, torch.Tensor) else "-"
                rows.append([name, type(mod).__name__, str(shape), sum(p.numel() for p in mod.parameters(recurse=False))])
            hooks.append(module.register_forward_hook(hook))
    model.eval()
    with torch.no_grad():
        model(torch.zeros((1, *input_shape)))
    for h in hooks:
        h.remove()
    return rows


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the run's HTML report (default ``RUN_DIR/report.html``) and return its path."""
    from evonas.config import parse_experiment
    from evonas.engine.build import build_space, import_plugins
    from evonas.engine.journal import JOURNAL_NAME, Journal
    from evonas.engine.journal import ranked as ranked_records

    run_dir = Path(run_dir)
    if not (run_dir / JOURNAL_NAME).is_file() or not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"{run_dir}: not a run folder (no {JOURNAL_NAME} and config.yaml)")
    config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    exp = parse_experiment(config, source=str(run_dir / "config.yaml"))
    import_plugins(exp)
    space = build_space(exp)
    with Journal(run_dir / JOURNAL_NAME) as j:
        records = list(j.records("seq"))
    objectives = list(exp.objectives)
    best_first = ranked_records(records, objectives[0].weight)

    from evonas.diagnostics import plot_diagnostics
    from evonas.plotting import plot_run

    plots_dir = run_dir / "plots"
    try:
        plot_run(run_dir)
    except Exception:  # a run without a logbook (stopped at once) still gets its report
        pass
    try:
        plot_diagnostics(run_dir)
    except Exception:
        pass

    parts = [f"<h1>evonas run {html.escape(exp.name)}</h1>"]
    stamps = [r.finished_at for r in records if r.finished_at]
    wall = (max(stamps) - min(stamps)) if len(stamps) > 1 else 0.0
    failures = [r for r in records if r.status not in ("ok",)]
    parts.append(_table(["run folder", "strategy", "objectives", "evaluations", "failed or infeasible", "from the cache", "first to last result"],
                        [[str(run_dir), exp.strategy.name, ", ".join(f"{o.metric} ({o.direction})" for o in objectives),
                          len(records), len(failures), sum(r.cached for r in records), f"{wall:.1f} s"]]))  # fmt: skip

    parts.append("<h2>Best genomes</h2>")
    metric_names = [o.metric for o in objectives] + [k for k in ("params", "train_s") if k not in {o.metric for o in objectives}]
    rows = []
    for i, r in enumerate(best_first[:10], 1):
        genome = space.from_dict(r.genome)
        rows.append([i, r.key, space.describe(genome), *[r.metrics.get(m, "-") for m in metric_names], r.generation, r.trial])
    parts.append(_table(["rank", "key", "genome", *metric_names, "generation", "trial"], rows) if rows else "<p>No successful evaluation.</p>")

    if best_first:
        best = space.from_dict(best_first[0].genome)
        shape = tuple(exp.dataset.params.get("input_shape", ())) or None
        try:
            from evonas.engine.build import build_dataset

            data = build_dataset(exp) if exp.fitness.name != "nb201_table" else None
            shape = data.input_shape if data is not None else tuple(space.example_input_shape)
            classes = data.num_classes if data is not None else 10
            layers = _layers(space.decode(best, input_shape=shape, num_classes=classes), shape)
            total = sum(row[3] for row in layers)
            parts.append(f"<h2>The best network, decoded</h2><p>{html.escape(space.describe(best))}: input {shape}, "
                         f"{classes} classes, {total:,} parameters.</p>")  # fmt: skip
            parts.append(_table(["module", "type", "output shape", "parameters"], layers))
        except Exception as exc:  # the report still shows everything else
            parts.append(f"<h2>The best network, decoded</h2><p>Could not decode it here ({html.escape(type(exc).__name__)}: "
                         f"{html.escape(str(exc))}).</p>")  # fmt: skip

    parts.append("<h2>Plots</h2>")
    for png in sorted(plots_dir.glob("*.png")) if plots_dir.is_dir() else []:
        data64 = base64.b64encode(png.read_bytes()).decode()
        parts.append(f'<figure><img alt="{html.escape(png.name)}" src="data:image/png;base64,{data64}">'
                     f"<figcaption>{html.escape(png.name)}</figcaption></figure>")  # fmt: skip

    parts.append("<h2>Timings</h2>")
    per_worker: dict[str, list[float]] = {}
    for r in records:
        if r.wall_s is not None and not r.cached:
            per_worker.setdefault(r.worker or "?", []).append(r.wall_s)
    rows = [[w, len(v), sum(v), statistics.median(v), max(v)] for w, v in sorted(per_worker.items())]
    parts.append(_table(["worker", "evaluations", "busy (s)", "median (s)", "longest (s)"], rows) if rows else "<p>No timings.</p>")

    parts.append("<h2>Failures</h2>")
    reasons = Counter((r.status, r.error or "") for r in failures)
    parts.append(_table(["status", "reason", "count"], [[s, e, n] for (s, e), n in reasons.most_common()])
                 if reasons else "<p>None.</p>")  # fmt: skip

    parts.append("<h2>Configuration</h2>")
    parts.append(f"<pre>{html.escape(yaml.safe_dump(config, sort_keys=False))}</pre>")
    page = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>evonas: {html.escape(exp.name)}</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(parts)}{_CHECK}</body></html>\n")  # fmt: skip
    out = Path(out) if out is not None else run_dir / "report.html"
    from evonas.engine.outputs import atomic_write

    atomic_write(out, page)
    return out
