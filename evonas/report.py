"""``evonas report RUN_DIR``: one self-contained HTML page about a run.

Everything is inside the file (plots as embedded PNG data, no fonts, styles or scripts fetched
from anywhere), so it opens offline and can be mailed: the configuration, every plot of the run
(drawn first if missing), the best genomes as a table, the decoded best network's layers (type,
output shape, parameters), timings per worker, the failures grouped by reason, and the faulty operators
(those that raised or gave no valid genome).

Example::

    path = write_report("runs/quickstart-20261128-064700")   # RUN_DIR/report.html
"""

from __future__ import annotations

import base64
import html
import json
import math
import statistics
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import yaml

from evonas.runfolder import RunFolderError

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


def write_report(
    run_dir: str | Path, out: str | Path | None = None, *, plugins: Sequence[str] | None = None, trust: bool = False
) -> Path:
    """Write the run's HTML report (default ``RUN_DIR/report.html``) and return its path.

    The run folder is read through :class:`~evonas.runfolder.RunFolder`: no plug-in it names is imported unless
    ``plugins`` names it (or ``trust``); what needs one then says which. Raises ``RunFolderError`` (one line).
    """
    from evonas.config import ConfigError
    from evonas.diagnostics import _plot_diagnostics
    from evonas.engine.build import build_space
    from evonas.engine.journal import ranked as ranked_records
    from evonas.plotting import _plot_run
    from evonas.runfolder import RunFolder, missing_plugins, space_file_problem

    folder = RunFolder(run_dir)
    run_dir = folder.path
    # where the page goes: inside the folder unless the user named a file
    out = Path(out) if out is not None else folder.inside("report.html")
    config = folder.config()
    exp = folder.experiment(plugins=plugins, trust=trust)
    imported = list(exp.plugins)
    hint = missing_plugins(config, [Path(p).stem for p in imported] + imported)
    try:
        space_problem = space_file_problem(exp.space_file, exp)
        space = None if space_problem else build_space(exp)
    except ConfigError as exc:  # a plug-in space not imported, a moved declaration file: genomes shown as JSON
        space, space_problem = None, f"{exc}{hint}"
    records = folder.records("seq")
    folder.warn_damaged()
    objectives = list(exp.objectives)
    best_first = ranked_records(records, objectives[0].weight)

    try:
        plots_dir: Path | None = folder.inside("plots")
    except RunFolderError as exc:  # a link out of the folder: no plot is drawn there, none is read from there
        print(f"evonas: {exc}; the report leaves the plots out", file=sys.stderr)
        plots_dir = None
    if plots_dir is not None:
        try:
            _plot_run(folder)
        except Exception:  # a run without a logbook (stopped at once) still gets its report
            pass
        try:
            _plot_diagnostics(folder, exp, space, warn=False)
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
        rows.append([i, r.key, _describe(space, r.genome), *[r.metrics.get(m, "-") for m in metric_names], r.generation, r.trial])
    parts.append(_table(["rank", "key", "genome", *metric_names, "generation", "trial"], rows) if rows else "<p>No successful evaluation.</p>")

    if best_first and space is None:
        parts.append(f"<h2>The best network, decoded</h2><p>Could not decode it here: {html.escape(space_problem)}.</p>")
    elif best_first:
        try:
            from evonas.engine.build import build_dataset

            best = space.from_dict(best_first[0].genome)
            data = build_dataset(exp) if exp.fitness.name != "nb201_table" else None
            shape = data.input_shape if data is not None else tuple(space.example_input_shape)
            classes = data.num_classes if data is not None else 10
            layers = _layers(space.decode(best, input_shape=shape, num_classes=classes), shape)
            total = sum(row[3] for row in layers)
            parts.append(f"<h2>The best network, decoded</h2><p>{html.escape(space.describe(best))}: input {shape}, "
                         f"{classes} classes, {total:,} parameters.</p>")  # fmt: skip
            parts.append(_table(["module", "type", "output shape", "parameters"], layers))
        except Exception as exc:  # the report still shows everything else
            why = f"{exc}{hint}" if isinstance(exc, ConfigError) else f"{type(exc).__name__}: {exc}"
            parts.append(f"<h2>The best network, decoded</h2><p>Could not decode it here ({html.escape(why)}).</p>")

    parts.append("<h2>Plots</h2>")
    for png in sorted(plots_dir.glob("*.png")) if plots_dir is not None and plots_dir.is_dir() else []:
        try:
            data64 = base64.b64encode(folder.inside(png.relative_to(run_dir)).read_bytes()).decode()
        except (OSError, RunFolderError):  # a link out of the folder, an unreadable file: left out
            continue
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

    parts.append("<h2>Faulty operators</h2>")
    from evonas.engine.status import operator_faults

    faults = operator_faults(folder)
    rows = [[f["kind"], f["name"], f["failures"], f["calls"], f["first_error"] or "?"] for f in faults]
    parts.append(
        "<p>Calls of these operators raised or gave no valid genome; each such child was made by another operator.</p>"
        + _table(["kind", "operator", "failed calls", "calls", "first error"], rows)
        if rows else "<p>None: every call of a mutation or crossover operator gave a valid genome.</p>"
    )  # fmt: skip

    parts.append("<h2>Configuration</h2>")
    parts.append(f"<pre>{html.escape(yaml.safe_dump(config, sort_keys=False))}</pre>")
    page = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>evonas: {html.escape(exp.name)}</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(parts)}{_CHECK}</body></html>\n")  # fmt: skip
    from evonas.engine.outputs import atomic_write

    try:
        atomic_write(out, page)
    except OSError as exc:
        raise RunFolderError(f"{out}: cannot write the report ({exc.strerror or exc})") from None
    return out


def _describe(space: Any, genome: dict[str, Any]) -> str:
    """The space's one-line description of ``genome`` (its JSON without the space, or if the genome does not fit)."""
    if space is not None:
        try:
            return str(space.describe(space.from_dict(genome)))
        except Exception:  # a genome from another version of the space, or damaged
            pass
    return json.dumps(genome, sort_keys=True)
