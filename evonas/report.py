"""``evonas report RUN_DIR``: one self-contained HTML page about a run.

Everything is inside the file (plots as embedded PNG data, no fonts, styles or scripts fetched
from anywhere), so it opens offline and can be mailed: the configuration, every plot of the run
(drawn by the caller's ``draw`` into a temporary folder: nothing is written in the run folder), the best
genomes as a table, the decoded best network's layers (type, output shape, parameters), timings per worker,
the failures grouped by reason, and the faulty operators (those that raised or gave no valid genome).

Example::

    path = write_report("runs/quickstart-20261128-064700", "quickstart-report.html")
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import math
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

from evonas.checks import is_real, one_line
from evonas.config import ConfigError
from evonas.diagnostics import run_space_here
from evonas.engine.build import build_dataset
from evonas.engine.journal import name_trials, ranked, reason_kind
from evonas.engine.outputs import atomic_write
from evonas.engine.status import idle, operator_faults, runtime_line, runtime_sessions
from evonas.runfolder import RunFolder, RunFolderError

__all__ = ["write_report", "is_report", "Draw"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.9em; } td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
th { background: #f3f3f3; } pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; } .num { text-align: right; font-variant-numeric: tabular-nums; }
.wide { overflow-x: auto; }
"""


#: how every report begins (what :func:`is_report` looks for)
_START = '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
_TITLE = "<title>evonas: "

# Marks the page once loaded: how many of its images the browser decoded (read by the browser test).
_CHECK = """<script>window.addEventListener("load", () => { const imgs = Array.from(document.images);
document.body.dataset.imagesLoaded = imgs.filter(i => i.complete && i.naturalWidth > 0).length + "/" + imgs.length; });</script>"""


#: the most modules of the decoded best network shown unfolded
DECODED_SHOWN = 40


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{_fmt(v)}</td>' if isinstance(v, (int, float)) else f"<td>{html.escape(str(v))}</td>"
                         for v in row) + "</tr>"
        for row in rows
    )  # fmt: skip
    # (a wide table scrolls within the page instead of running past its edge)
    return f'<div class="wide"><table><tr>{head}</tr>{body}</table></div>'


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return html.escape(str(v))
    if isinstance(v, int) or (math.isfinite(v) and v.is_integer() and abs(v) < 1e15):  # a count, an index: in full
        return f"{int(v):,}"
    return f"{v:.4g}" if math.isfinite(v) else str(v)


def _layers(model: Any, input_shape: tuple[int, ...]) -> list[list[Any]]:
    """Leaf modules of ``model`` in call order: name, type, output shape, parameters."""
    import torch  # here, not at the top: only a page that decodes a network needs torch (seconds to import)

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


#: draws a run's plots into a folder and returns the files: ``draw(folder, experiment, space, out_dir)``
Draw = Callable[[RunFolder, Any, Any, Path], Sequence[Path]]


@dataclasses.dataclass
class _Run:
    """What the report shows of a run folder, read once."""

    folder: RunFolder
    config: dict[str, Any]
    exp: Any
    space: Any  #: ``None`` where it cannot be built here (then ``space_problem`` says why)
    space_problem: str
    hint: str  #: which plug-ins the run names that were not imported ("" if none)
    records: list[Any]
    best_first: list[Any]


def write_report(
    run_dir: str | Path, out: str | Path, *, plugins: Sequence[str] | None = None, trust: bool = False,
    draw: Draw | None = None,
) -> Path:
    """Write the run's HTML report to ``out`` and return its path; nothing is written in the run folder.

    The run folder is read through :class:`~evonas.runfolder.RunFolder`: no plug-in it names is imported unless
    ``plugins`` names it (or ``trust``); what needs one then says which. ``draw`` draws the plots the page embeds
    (into a temporary folder; ``None``: a page without plots; a plot it cannot draw is left out). Raises
    ``RunFolderError`` (one line).
    """
    run = _read(run_dir, plugins, trust)
    if run.space is None:  # said on the terminal too, not only inside the page
        print(f"evonas: report: the decoded network is left out: {run.space_problem}", file=sys.stderr)
    parts = [
        f"<h1>evonas run {html.escape(run.exp.name)}</h1>", _overview(run), *_best_genomes(run), *_front(run),
        *_decoded_best(run), *_plots(run, draw), *_timings(run.records), *_failures(run.records),
        *_faulty_operators(run.folder), "<h2>Configuration</h2>",
        f"<pre>{html.escape(yaml.safe_dump(run.config, sort_keys=False, allow_unicode=True))}</pre>",
    ]  # fmt: skip
    page = (f"{_START}{_TITLE}{html.escape(run.exp.name)}</title><style>{_STYLE}</style></head>"
            f"<body>{''.join(parts)}{_CHECK}</body></html>\n")  # fmt: skip
    out = Path(out)
    try:
        atomic_write(out, page)
    except OSError as exc:
        raise RunFolderError(f"{out}: cannot write the report ({exc.strerror or exc})") from None
    return out


def is_report(path: str | Path) -> bool:
    """Whether the file ``path`` is a page :func:`write_report` wrote (which a new report may replace)."""
    try:
        with open(path, "rb") as fh:
            start = fh.read(len(_START) + len(_TITLE))
    except OSError:
        return False
    return start == (_START + _TITLE).encode()


def _read(run_dir: str | Path, plugins: Sequence[str] | None, trust: bool) -> _Run:
    folder = RunFolder(run_dir)
    config = folder.config()
    exp = folder.experiment(plugins=plugins, trust=trust)
    space, problem, hint = run_space_here(config, exp)
    records = folder.records("seq")
    folder.warn_damaged()
    best_first = ranked(records, exp.weights)
    return _Run(folder, config, exp, space, problem, hint, records, best_first)


def _overview(run: _Run) -> str:
    records, exp = run.records, run.exp
    stamps = [r.finished_at for r in records if r.finished_at]
    wall = (max(stamps) - min(stamps)) if len(stamps) > 1 else 0.0
    failures = sum(r.status in ("failed", "infeasible", "violated") for r in records)
    trained = [r.metrics for r in records if not r.cached]
    steps, samples = (sum(int(m[k]) for m in trained if is_real(m.get(k))) for k in ("train_steps", "train_samples"))
    meta = run.folder.meta()
    live = meta.get("live")
    live = live if isinstance(live, dict) else {}
    restarts = live.get("restarts") if isinstance(live.get("restarts"), int) else "-"
    repeats = live.get("repeats") if isinstance(live.get("repeats"), int) else "-"
    state = str(live.get("state") or "-")  # how it ended: finished (early: why), interrupted, crashed (why)
    ended = f"{state}: {live['error']}" if isinstance(live.get("error"), str) and live.get("error") else state
    headers = ["strategy", "objectives", "evaluations", "failed or infeasible", "pruned",
               "inherited weights", "from the cache", "retried in safe mode", "worker restarts (last session)",
               "repeats answered from the journal (last session)", "training steps", "samples seen",
               "first to last result", "trained on", "state"]  # fmt: skip
    row = [exp.strategy.name, ", ".join(f"{o.metric} ({o.direction})" for o in exp.objectives),
           len(records), failures, sum(r.status == "pruned" for r in records), sum(r.inherited is not None for r in records),
           sum(r.cached for r in records), sum(r.safe_mode for r in records), restarts, repeats, f"{steps:,}",
           f"{samples:,}", f"{wall:.1f} s", runtime_line(runtime_sessions(meta.get("runtime"))) or "-", ended]  # fmt: skip
    return _table(["run", str(run.folder.path)], [[h, v] for h, v in zip(headers, row)])  # a row each: it fits


def _best_genomes(run: _Run) -> list[str]:
    objectives = {o.metric for o in run.exp.objectives}
    # the objectives, then what the run's evaluations recorded of a size, a cost and a held-out score
    recorded = {k for r in run.best_first[:10] for k in r.metrics}
    extra = [k for k in ("params", "train_s", "test_acc_200ep") if k not in objectives and k in recorded]
    names = run.exp.metrics + extra
    rows = [[i, r.key, _describe(run.space, r.genome), *[r.metrics.get(m, "-") for m in names], r.generation, r.trial]
            for i, r in enumerate(run.best_first[:10], 1)]  # fmt: skip
    table = _table(["rank", "key", "genome", *names, "generation", "trial"], rows)
    return ["<h2>Best genomes</h2>", table if rows else "<p>No successful evaluation.</p>"]


def _front(run: _Run) -> list[str]:
    """With several objectives: the Pareto front of the run's full evaluations (``pareto_front.json``'s members), and
    its hypervolume where the strategy has a reference point."""
    from evonas.pareto import nondominated

    if len(run.exp.objectives) < 2 or not run.best_first:
        return []
    names = run.exp.metrics
    members = [run.best_first[i] for i in nondominated([r.fitness for r in run.best_first], run.exp.weights, ties=True)]
    members.sort(key=lambda r: [-w * v for w, v in zip(run.exp.weights, r.fitness)])
    rows = [[r.key, _describe(run.space, r.genome), *[r.metrics.get(m, "-") for m in names], r.generation, r.trial]
            for r in members]  # fmt: skip
    note = ""
    try:
        saved = json.loads(run.folder.inside("pareto_front.json").read_text())
        if isinstance(saved, dict) and is_real(saved.get("hypervolume")) and isinstance(saved.get("reference_point"), list):
            ref = ", ".join(_fmt(v) for v in saved["reference_point"])
            note = f" Its hypervolume is {_fmt(saved['hypervolume'])}, from the reference point ({html.escape(ref)})."
    except (OSError, ValueError, RunFolderError):
        pass
    text = (f"<p>{len(members)} of {len(run.best_first)} full evaluations: none of them is beaten in every objective "
            f"by another.{note}</p>")  # fmt: skip
    return ["<h2>Pareto front</h2>", text, _table(["key", "genome", *names, "generation", "trial"], rows)]


def _decoded_best(run: _Run) -> list[str]:
    """The best network's layers: type, output shape, parameters (or why it cannot be decoded here)."""
    heading = "<h2>The best network, decoded</h2>"
    if not run.best_first:
        return []
    space, exp = run.space, run.exp
    if space is None:
        return [f"{heading}<p>Could not decode it here: {html.escape(run.space_problem)}.</p>"]
    try:
        best = space.from_dict(run.best_first[0].genome)
        data = build_dataset(exp) if exp.fitness.name != "nb201_table" else None
        shape = data.input_shape if data is not None else tuple(space.example_input_shape)
        classes = data.num_classes if data is not None else 10
        layers = _layers(space.decode(best, input_shape=shape, num_classes=classes), shape)
    except Exception as exc:  # the report still shows everything else
        why = f"{exc}{run.hint}" if isinstance(exc, ConfigError) else f"{type(exc).__name__}: {exc}"
        return [f"{heading}<p>Could not decode it here ({html.escape(why)}).</p>"]
    total = sum(row[3] for row in layers)
    names = tuple(getattr(data, "classes", None) or ())
    named = f" ({', '.join(f'{i}: {n}' for i, n in enumerate(names[:12]))}{', ...' if len(names) > 12 else ''})" \
        if names and names != tuple(str(i) for i in range(len(names))) else ""  # fmt: skip
    summary = (f"{html.escape(space.describe(best))}: input {shape}, {classes} classes{html.escape(named)}, "
               f"{total:,} parameters.")  # fmt: skip
    table = _table(["module", "type", "output shape", "parameters"], layers)
    if len(layers) > DECODED_SHOWN:  # a cell network's hundreds of modules: folded, so the plots are not far below
        table = f"<details><summary>its {len(layers)} modules</summary>{table}</details>"
    return [f"{heading}<p>{summary}</p>", table]


def _plots(run: _Run, draw: Draw | None) -> list[str]:
    """Every plot ``draw`` makes of the run, embedded as PNG data (drawn into a temporary folder, then removed)."""
    parts = ["<h2>Plots</h2>"]
    if draw is None:
        return parts
    with tempfile.TemporaryDirectory(prefix="evonas-report-") as tmp:
        for png in sorted((Path(p) for p in draw(run.folder, run.exp, run.space, Path(tmp))), key=lambda p: p.name):
            try:
                data64 = base64.b64encode(png.read_bytes()).decode()
            except OSError:  # a plot that could not be drawn: left out
                continue
            name = html.escape(png.name)
            parts.append(f'<figure><img alt="{name}" src="data:image/png;base64,{data64}"><figcaption>{name}'
                         "</figcaption></figure>")  # fmt: skip
    return parts


def _timings(records: list[Any]) -> list[str]:
    per_worker: dict[str, list[float]] = {}
    for r in records:
        if r.wall_s is not None and not r.cached:
            per_worker.setdefault(r.worker or "?", []).append(r.wall_s)
    rows = [[w, len(v), sum(v), statistics.median(v), max(v)] for w, v in sorted(per_worker.items())]
    table = _table(["worker", "evaluations", "busy (s)", "median (s)", "longest (s)"], rows)
    return ["<h2>Timings</h2>", table if rows else "<p>No timings.</p>"]


def _failures(records: list[Any]) -> list[str]:
    failed = [r for r in records if r.status not in ("ok", "pruned")]
    kinds = Counter((r.status, reason_kind(r.error or "")) for r in failed)  # a seed in a message counts together
    first: dict[tuple[str, str | None], list[Any]] = {}
    for r in sorted(failed, key=lambda r: r.trial):
        first.setdefault((r.status, reason_kind(r.error or "")), []).append(r)
    rows = [
        [s, first[(s, k)][0].error or "", n, name_trials([(r.trial, r.key) for r in first[(s, k)][:3]], n),
         one_line(json.dumps(first[(s, k)][0].genome, default=str), 300)]
        for (s, k), n in kinds.most_common()
    ]  # fmt: skip
    table = _table(["status", "reason", "count", "which (trial, key)", "the first one's genome"], rows)
    return ["<h2>Failures</h2>", table if kinds else "<p>None.</p>"]


def _faulty_operators(folder: RunFolder) -> list[str]:
    rows = [[f["kind"], f["name"], f["failures"], f["calls"],
             f["first_error"] or (f"gave back its parent{'s' if f.get('kind') == 'crossover' else ''} unchanged in every call" if idle(f) else "?")]
            for f in operator_faults(folder)]  # fmt: skip
    if not rows:
        return ["<h2>Faulty operators</h2>",
                "<p>None: every call of a mutation or crossover operator gave a valid genome.</p>"]  # fmt: skip
    return ["<h2>Faulty operators</h2>",
            "<p>Calls of these operators raised or gave no valid genome; each such child was made by another "
            "operator.</p>" + _table(["kind", "operator", "failed calls", "calls", "first error"], rows)]  # fmt: skip


def _describe(space: Any, genome: dict[str, Any]) -> str:
    """The space's one-line description of ``genome`` (its JSON without the space, or if the genome does not fit)."""
    if space is not None:
        try:
            return str(space.describe(space.from_dict(genome)))
        except Exception:  # a genome from another version of the space, or damaged
            pass
    return json.dumps(genome)  # in the journal's order (a define-by-run genome's: the order its choices are asked)
