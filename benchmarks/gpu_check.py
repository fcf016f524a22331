"""GPU check: what evonas does on one CUDA GPU, in one prepared script of at most 8 minutes.

Five steps, each with a time budget and a guard (a step that fails or runs out of time is recorded
as such, and the next one runs):

1. environment: ``evonas doctor --json`` (torch, CUDA, GPU name and memory, the self-tests on the GPU),
   plus ``nvidia-smi``'s view of the GPU.
2. the quickstart (``experiments/quickstart.yaml``) on CUDA with AMP (``device: auto``, ``amp: auto``):
   evaluations per minute, best ``val_acc``, failures, peak GPU memory.
3. a larger image problem: ``synthetic`` 3x32x32 images, 10 classes, the full ``chain`` space, the
   same randomly sampled genomes on 1 worker and on 4 workers sharing the GPU
   (``backend: {name: local, params: {num_gpus: 0.25}}``): evaluations per minute.
4. the quickstart on CPU only (CUDA hidden, ``fitness.params.device=cpu``, one worker per core).
5. kill and resume on the GPU: a run is SIGKILLed mid-run; no worker process may outlive it by more
   than a few seconds; ``evonas resume`` finishes it; the journal must hold every evaluation, none failed.

Peak GPU memory is measured two ways. Exactly, per evaluation: the runs use ``train_peak_mem``, the
``train`` fitness with two more metrics, ``torch.cuda.max_memory_allocated`` and
``max_memory_reserved`` read in the worker after each evaluation (reset before it), so they reach
the journal like any metric (this file is the plugin: ``plugins: [gpu_check]``). And for the whole
device: ``nvidia-smi`` polled every 0.5 s during the GPU steps (all processes, CUDA contexts included;
a sample, so a shorter peak can be missed).

Every run trains for real: ``--no-cache``, and ``EVONAS_CACHE`` points into the output folder.

Prepare the wheels here (a machine with PyPI; the folder ``.whl/`` is ignored by git)::

    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \\
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \\
        -d .whl deap moocore cffi pycparser platformdirs

Then, on the GPU machine (torch with CUDA, numpy, scipy, scikit-learn, matplotlib, tqdm, PyYAML; no
internet), from the root of the checkout, the one command::

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && PYTHONPATH=/tmp/site:. python3 benchmarks/gpu_check.py

It writes ``gpu_check.json``, ``gpu_check.txt`` and the run folders to ``--out`` (default ``$OUT`` if
set, else ``gpu_check_out/``) and prints the summary. ``--cpu-smoke`` tests the script on a machine
without a GPU in under a minute on 2 cores: tiny budgets, the CUDA steps (2, 3) skipped with a "no GPU"
line, the kill-and-resume step on the CPU::

    PYTHONPATH=/tmp/site:. python3 benchmarks/gpu_check.py --cpu-smoke --out /tmp/gpu_check_smoke
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "experiments" / "quickstart.yaml"
#: the fitness of every run here: ``train`` reporting its peak GPU memory (registered when this file is a plugin)
PEAK_FITNESS = "train_peak_mem"
#: set in the environment of the evonas processes this script starts: importing this file registers the fitness
PLUGIN_VARIABLE = "EVONAS_GPU_CHECK_PLUGIN"
#: the whole check on the GPU machine, in seconds (its limit is 8 minutes)
TOTAL_BUDGET_S = 450.0
#: the smoke test's limit: about 40 s on 2 idle cores; the limits leave room for a machine busy with other work
SMOKE_BUDGET_S = 300.0

if os.environ.get(PLUGIN_VARIABLE) == "1" and __name__ != "__main__":  # imported by a run: `plugins: [gpu_check]`
    from evonas.fitness import FITNESSES
    from evonas.fitness.train import TrainFitness

    @FITNESSES.register(PEAK_FITNESS)
    class PeakMemoryTrainFitness(TrainFitness):
        """The ``train`` fitness, plus ``gpu_peak_alloc_mb`` / ``gpu_peak_reserved_mb`` (0 on CPU) and ``cuda`` (1 or 0)."""

        metrics = (*TrainFitness.metrics, "gpu_peak_alloc_mb", "gpu_peak_reserved_mb", "cuda")

        def evaluate(self, genome: Any, **kwargs: Any) -> dict[str, float]:
            import torch

            device, _ = self._resolve()
            cuda = device.type == "cuda"
            if cuda:
                torch.cuda.reset_peak_memory_stats(device)
            metrics = super().evaluate(genome, **kwargs)
            metrics["cuda"] = float(cuda)
            metrics["gpu_peak_alloc_mb"] = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else 0.0
            metrics["gpu_peak_reserved_mb"] = torch.cuda.max_memory_reserved(device) / 2**20 if cuda else 0.0
            return metrics


# -- helpers ----------------------------------------------------------------------
def evonas_env(out: Path, *, cpu_only: bool = False) -> tuple[dict[str, str], list[str]]:
    """The environment of the evonas processes: this checkout (and this file, as a plugin) importable, a private
    evaluation cache, the plugin switch; ``cpu_only`` hides CUDA. Also returns notes on what was worked around."""
    env = dict(os.environ)
    notes = []
    paths = [str(REPO)] + [str(Path(p).resolve()) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    paths.append(str(REPO / "benchmarks"))
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["EVONAS_CACHE"] = str(out / "evaluations.sqlite")
    env[PLUGIN_VARIABLE] = "1"
    env.pop("EVONAS_DOCTOR_FAULT", None)
    if cpu_only:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env, notes


def journal_stats(run_dir: Path) -> dict[str, Any]:
    """Counts, rates, best ``val_acc`` and peak memory from a run folder's journal (read-only)."""
    path = run_dir / "journal.sqlite"
    if not path.is_file():
        return {"evaluations": 0, "note": "no journal"}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute("SELECT status, metrics, finished_at, worker, cached, error FROM evaluations ORDER BY seq").fetchall()
        columns = {r[1] for r in db.execute("PRAGMA table_info(evaluations)")}
        safe = db.execute("SELECT COUNT(*) FROM evaluations WHERE safe_mode != 0").fetchone()[0] if "safe_mode" in columns else 0
    finally:
        db.close()
    ok = [json.loads(m or "{}") for s, m, *_ in rows if s == "ok"]
    stamps = sorted(t for _, _, t, *_ in rows if t is not None)
    failed = [e for s, _, _, _, _, e in rows if s == "failed"]
    out: dict[str, Any] = {
        "evaluations": len(rows), "ok": len(ok), "failed": len(failed), "cached": sum(bool(c) for *_, c, _ in rows),
        "workers": len({w for _, _, _, w, _, _ in rows}), "safe_mode": safe,
        "errors": sorted(set(failed))[:3],
    }  # fmt: skip
    accs = [m["val_acc"] for m in ok if isinstance(m.get("val_acc"), (int, float))]
    out["best_val_acc"] = max(accs) if accs else None
    if len(stamps) >= 2 and stamps[-1] > stamps[0]:
        out["steady_per_min"] = 60 * (len(stamps) - 1) / (stamps[-1] - stamps[0])  # first to last result: no start-up
    for key in ("gpu_peak_alloc_mb", "gpu_peak_reserved_mb"):
        values = [m[key] for m in ok if isinstance(m.get(key), (int, float))]
        out[key] = round(max(values), 1) if values else None
    cuda = [m.get("cuda") for m in ok if "cuda" in m]
    out["on_cuda"] = f"{sum(1 for c in cuda if c)}/{len(cuda)}" if cuda else None
    train = [m["train_s"] for m in ok if isinstance(m.get("train_s"), (int, float))]
    out["median_train_s"] = round(statistics.median(train), 3) if train else None
    return out


class GpuPoller:
    """``nvidia-smi`` every ``every`` seconds in a thread: the most device memory used, and the mean utilisation."""

    def __init__(self, every: float = 0.5) -> None:
        self.every, self.samples = every, []  # type: list[tuple[float, float]]
        self.error: str | None = None if shutil.which("nvidia-smi") else "nvidia-smi not found"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        cmd = ["nvidia-smi", "--query-gpu=memory.used,utilization.gpu", "--format=csv,noheader,nounits"]
        while not self._stop.is_set():
            try:
                text = subprocess.run(cmd, capture_output=True, text=True, timeout=5).stdout
                used, util = (float(v) for v in text.strip().splitlines()[0].split(","))
                self.samples.append((used, util))
            except Exception as exc:  # noqa: BLE001  (a poller must not end the check)
                self.error = f"{type(exc).__name__}: {exc}"
            self._stop.wait(self.every)

    def __enter__(self) -> "GpuPoller":
        if self.error is None:
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def result(self) -> dict[str, Any]:
        if not self.samples:
            return {"nvidia_smi": self.error or "no samples"}
        return {"nvidia_smi_max_used_mb": max(u for u, _ in self.samples),
                "nvidia_smi_mean_util_pct": round(statistics.mean(g for _, g in self.samples), 1),
                "nvidia_smi_samples": len(self.samples)}  # fmt: skip


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL the session ``proc`` leads (the evonas process this script started, and its workers)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def evonas(args: list[str], env: dict[str, str], timeout: float, log: Path) -> dict[str, Any]:
    """Run ``python -m evonas.cli ARGS`` in its own session; killed (whole session) after ``timeout`` seconds."""
    start = time.monotonic()
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "evonas.cli", *args], stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, cwd=REPO, start_new_session=True)  # fmt: skip
        try:
            rc: int | None = proc.wait(timeout=max(1.0, timeout))
            timed_out = False
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            rc, timed_out = None, True
    tail = log.read_text(errors="replace").strip().splitlines()[-3:]
    return {"rc": rc, "timed_out": timed_out, "wall_s": round(time.monotonic() - start, 1), "output_tail": tail}


def run_experiment(config: Path, run_dir: Path, sets: list[str], env: dict[str, str], timeout: float,
                   extra: list[str] = ()) -> dict[str, Any]:  # fmt: skip
    """``evonas run`` into ``run_dir`` (fresh, no evaluation cache), then the journal's figures."""
    sets = [f"fitness.name={PEAK_FITNESS}", "plugins=[gpu_check]", *sets]
    args = ["run", str(config), "--out", str(run_dir), "--quiet", "--no-cache", "--overwrite", *extra]
    for s in sets:
        args += ["--set", s]
    result = evonas(args, env, timeout, run_dir.with_suffix(".log"))
    result.update(journal_stats(run_dir))
    if result.get("evaluations") and result["wall_s"]:
        result["per_min"] = round(60 * result["evaluations"] / result["wall_s"], 1)  # end to end, start-up included
    if result.get("steady_per_min"):
        result["steady_per_min"] = round(result["steady_per_min"], 1)
    result["status"] = "ok" if result["rc"] == 0 else ("timed out (partial figures)" if result["timed_out"] else "failed")
    return result


def log_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()[:160]
    except OSError:
        return "?"


def _live_pids(run_dir: Path) -> list[int]:
    """The worker pids the run's live status (journal meta) records."""
    with contextlib.suppress(Exception):
        db = sqlite3.connect(f"file:{run_dir / 'journal.sqlite'}?mode=ro", uri=True, timeout=5)
        try:
            row = db.execute("SELECT value FROM meta WHERE name = 'live'").fetchone()
        finally:
            db.close()
        return [int(w["pid"]) for w in json.loads(row[0]).get("workers", []) if w.get("pid")]
    return []


def _rows(run_dir: Path) -> int:
    with contextlib.suppress(Exception):
        db = sqlite3.connect(f"file:{run_dir / 'journal.sqlite'}?mode=ro", uri=True, timeout=5)
        try:
            return int(db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])
        finally:
            db.close()
    return 0


def kill_and_resume(run_dir: Path, sets: list[str], extra: list[str], env: dict[str, str], *, kill_at: int,
                    expected: int, timeout: float) -> dict[str, Any]:  # fmt: skip
    """Start a run, SIGKILL its main process once ``kill_at`` evaluations are journaled, look for surviving
    workers, then ``evonas resume`` it and check the journal: ``expected`` evaluations, none failed."""
    deadline = time.monotonic() + timeout
    sets = [f"fitness.name={PEAK_FITNESS}", "plugins=[gpu_check]", *sets]
    args = [sys.executable, "-m", "evonas.cli", "run", str(QUICKSTART), "--out", str(run_dir), "--quiet", "--no-cache",
            "--overwrite", *extra]  # fmt: skip
    for s in sets:
        args += ["--set", s]
    log = run_dir.with_suffix(".log")
    out: dict[str, Any] = {"kill_at": kill_at, "expected": expected}
    with open(log, "w") as fh:
        proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=REPO,
                                start_new_session=True)  # fmt: skip
        try:
            while _rows(run_dir) < kill_at and proc.poll() is None and time.monotonic() < deadline - 30:
                time.sleep(0.2)
            if proc.poll() is not None:
                out.update(status="failed", error=f"the run ended (exit {proc.returncode}) before {kill_at} evaluations")
                return out
            workers = sorted(set(_children(proc.pid)) | set(_live_pids(run_dir)))
            out["rows_at_kill"] = _rows(run_dir)
            out["processes_at_kill"] = len(workers)
            os.kill(proc.pid, signal.SIGKILL)  # the main process only: its workers are on their own now
            killed_at = time.monotonic()
            proc.wait()
            while any(_alive(p) for p in workers) and time.monotonic() - killed_at < 5:
                time.sleep(0.1)
            survivors = [p for p in workers if _alive(p)]
            out["survivors_after_5s"] = [f"{p}: {_cmdline(p)}" for p in survivors]
            out["workers_gone_s"] = None if survivors else round(time.monotonic() - killed_at, 2)
            for p in survivors:  # clean up what this check started
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                _kill_group(proc)
    resumed = evonas(["resume", str(run_dir), "--quiet", "--plugins", "gpu_check"], env, deadline - time.monotonic(), run_dir.with_suffix(".resume.log"))
    out["resume"] = resumed
    stats = journal_stats(run_dir)
    out.update({k: stats.get(k) for k in ("evaluations", "ok", "failed", "best_val_acc", "errors")})
    # a repeated genome is answered from the journal, not journaled again (rare: the GA re-draws repeats)
    found = re.search(r"(\d+) repeats answered from the journal", log_text(run_dir.with_suffix(".resume.log")))
    out["repeats"] = int(found.group(1)) if found else 0
    problems = []
    if resumed["rc"] != 0:
        problems.append(f"resume exit {resumed['rc']}{' (timed out)' if resumed['timed_out'] else ''}")
    if (stats.get("evaluations") or 0) + out["repeats"] != expected:
        problems.append(f"{stats.get('evaluations')} evaluations in the journal (+ {out['repeats']} repeats), expected {expected}")
    if stats.get("failed"):
        problems.append(f"{stats['failed']} failed")
    if survivors:
        problems.append(f"{len(survivors)} process(es) outlived the killed run by 5 s")
    out["status"] = "ok" if not problems else "failed: " + "; ".join(problems)
    return out


# -- the steps --------------------------------------------------------------------
def step_environment(out: Path, env: dict[str, str], timeout: float, smoke: bool) -> dict[str, Any]:
    if smoke:  # the self-tests take ~15 s on 2 cores: the smoke test reads the rest only
        code = "import json; from evonas.doctor import collect; print(json.dumps(collect(selftest=False)))"
        cmd = [sys.executable, "-c", code]
    else:
        cmd = [sys.executable, "-m", "evonas.cli", "doctor", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout)
    (out / "doctor.json").write_text(proc.stdout)
    report = json.loads(proc.stdout)
    torch_info = report["torch"]
    result: dict[str, Any] = {
        "status": "ok" if proc.returncode == 0 else f"doctor exit {proc.returncode}",
        "python": report["python"]["version"], "torch": torch_info.get("version"), "build": torch_info.get("build"),
        "cuda_devices": torch_info.get("cuda_devices", []), "amp_auto": (report.get("amp") or {}).get("auto"),
        "cpu": report["cpu"]["model"], "cores": report["cpu"]["cores_usable"], "default_workers": report["workers"].get("default"),
        "selftests": {t["name"]: ("ok" if t["ok"] else t["error"]) for t in report["selftests"]},
        "verdict": report["verdict"]["text"],
    }  # fmt: skip
    if shutil.which("nvidia-smi"):
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,memory.used", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)  # fmt: skip
        result["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()
    return result


def step_quickstart_gpu(out: Path, env: dict[str, str], timeout: float, smoke: bool) -> dict[str, Any]:
    sets = [*SMOKE_SETS, "strategy.params.generations=1"] if smoke else []
    with GpuPoller() as poller:
        result = run_experiment(QUICKSTART, out / "runs" / "quickstart-gpu", sets, env, timeout)
    result.update(poller.result())
    return result


def write_large_config(out: Path, smoke: bool) -> Path:
    """The larger image problem: synthetic 3x32x32 images, 10 classes, random genomes of the full chain space."""
    import yaml

    samples = 8 if smoke else 48
    config = {
        "name": "gpu_check_large", "seed": 0,
        "space": {"name": "chain"},
        "dataset": {"name": "synthetic", "params": {"n_samples": 1000 if smoke else 6000, "num_classes": 10,
                                                    "shape": [3, 32, 32], "noise": 2.0}},
        "fitness": {"name": "train", "params": {"epochs": 2}},
        # one generation of `samples`: no barrier between generations, so more workers are never left idle
        "strategy": {"name": "random", "params": {"samples": samples, "batch": samples}},
        "workers": 1,
    }  # fmt: skip
    path = out / "large.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def step_large_gpu(out: Path, env: dict[str, str], timeout: float, smoke: bool) -> dict[str, Any]:
    config = write_large_config(out, smoke)
    result: dict[str, Any] = {"problem": "synthetic 3x32x32, 10 classes, chain space, random genomes, 2 epochs"}
    with GpuPoller() as poller:
        result["one_worker"] = run_experiment(config, out / "runs" / "large-1w", [], env, timeout / 2, ["--workers", "1"])
    result["one_worker"].update(poller.result())
    with GpuPoller() as poller:
        shared = ["backend.name=local", "backend.params.num_gpus=0.25"]
        result["four_workers"] = run_experiment(config, out / "runs" / "large-4w", shared, env, timeout / 2, ["--workers", "4"])
    result["four_workers"].update(poller.result())
    one, four = result["one_worker"].get("steady_per_min"), result["four_workers"].get("steady_per_min")
    result["speedup_4_vs_1"] = round(four / one, 2) if one and four else None
    states = {result["one_worker"]["status"], result["four_workers"]["status"]}
    result["status"] = "ok" if states == {"ok"} else "; ".join(sorted(states))
    return result


#: the smoke test's quickstart: 8 + 8 per generation, 1 epoch each
SMOKE_SETS = ["strategy.params.population_size=8", "strategy.params.offspring=8", "fitness.params.epochs=1"]


def step_quickstart_cpu(out: Path, timeout: float, smoke: bool) -> dict[str, Any]:
    env, _ = evonas_env(out, cpu_only=True)
    sets = ["fitness.params.device=cpu"] + ([*SMOKE_SETS, "strategy.params.generations=1"] if smoke else [])
    return run_experiment(QUICKSTART, out / "runs" / "quickstart-cpu", sets, env, timeout)


def step_kill_resume(out: Path, env: dict[str, str], timeout: float, smoke: bool, gpu: bool) -> dict[str, Any]:
    generations, size = (2, 8) if smoke else (3, 16)
    sets = [f"strategy.params.generations={generations}", *(SMOKE_SETS if smoke else [])]
    extra = ["--workers", "2"]
    if gpu:
        sets += ["backend.name=local", "backend.params.num_gpus=0.5"]  # two workers on the GPU
    result = kill_and_resume(out / "runs" / "kill-resume", sets, extra, env, kill_at=6 if smoke else 24,
                             expected=size + size * generations, timeout=timeout)  # fmt: skip
    result["device"] = "cuda (2 workers sharing the GPU)" if gpu else "cpu (no GPU)"
    return result


# -- the check --------------------------------------------------------------------
def guarded(name: str, fn: Callable[[], dict[str, Any]], report: dict[str, Any], save: Callable[[], None]) -> dict[str, Any]:
    """Run one step; an exception is recorded as the step's result and the check goes on."""
    start = time.monotonic()
    print(f"[{time.strftime('%H:%M:%S')}] {name} ...", flush=True)
    try:
        result = fn()
    except Exception as exc:  # noqa: BLE001  (one failing step must not stop the rest)
        result = {"status": f"error: {type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-3000:]}
    result["step_s"] = round(time.monotonic() - start, 1)
    report["steps"][name] = result
    save()
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {result.get('status')} ({result['step_s']} s)", flush=True)
    return result


def skipped(reason: str) -> dict[str, Any]:
    return {"status": f"skipped: {reason}"}


def _rate(r: dict[str, Any]) -> str:
    if not r or not r.get("evaluations"):
        return f"{r.get('status', '?')}" if r else "?"
    safe = f", {r['safe_mode']} retried in safe mode after a worker died" if r.get("safe_mode") else ""
    text = f"{r['evaluations']} evaluations ({r.get('failed', 0)} failed{safe}) in {r['wall_s']} s: {r.get('per_min', '?')}/min end to end"
    if r.get("steady_per_min"):
        text += f", {r['steady_per_min']}/min from the first result on"
    return text


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def summary(report: dict[str, Any]) -> str:
    """The short text summary."""
    s = report["steps"]
    lines = [f"evonas gpu check  {report['started']}  ({'cpu smoke test' if report['smoke'] else 'full'}, "
             f"{report['total_s']} s)"]  # fmt: skip
    lines += [f"note      {n}" for n in report["notes"]]
    e = s.get("1 environment", {})
    if "torch" in e:
        gpus = ", ".join(f"{d['name']} ({d['total_gib']} GiB, {d.get('free_gib')} free)" for d in e["cuda_devices"]) or "no GPU"
        lines.append(f"env       Python {e['python']}, torch {e['torch']} ({e['build']}); {gpus}; AMP auto -> {e['amp_auto']}; "
                     f"{e['cpu']}, {e['cores']} cores; {e['default_workers']} worker(s) by default")  # fmt: skip
        failed = {k: v for k, v in e["selftests"].items() if v != "ok"}
        tests = f"self-tests {len(e['selftests']) - len(failed)}/{len(e['selftests'])} passed" if e["selftests"] else "self-tests not run"
        lines.append(f"doctor    {tests}{': ' + '; '.join(f'{k} {v}' for k, v in failed.items()) if failed else ''}")
        lines.append(f"verdict   {e['verdict']}")
    else:
        lines.append(f"env       {e.get('status')}")
    q = s.get("2 quickstart gpu", {})
    lines.append(f"qs gpu    {_rate(q)}")
    if q.get("evaluations"):
        lines.append(f"          best val_acc {_num(q.get('best_val_acc'))}, on CUDA {q.get('on_cuda')}, peak allocated "
                     f"{q.get('gpu_peak_alloc_mb')} MiB, reserved {q.get('gpu_peak_reserved_mb')} MiB (per worker, "
                     f"torch.cuda.max_memory_*); device max {q.get('nvidia_smi_max_used_mb', q.get('nvidia_smi'))} MiB "
                     f"(nvidia-smi), util {q.get('nvidia_smi_mean_util_pct', '?')}%")  # fmt: skip
    g = s.get("3 large gpu", {})
    if "one_worker" in g:
        lines.append(f"large 1w  {_rate(g['one_worker'])}; peak allocated {g['one_worker'].get('gpu_peak_alloc_mb')} MiB")
        lines.append(f"large 4w  {_rate(g['four_workers'])}; device max {g['four_workers'].get('nvidia_smi_max_used_mb', '?')} MiB")
        lines.append(f"          4 workers sharing the GPU / 1 worker: {g.get('speedup_4_vs_1')}x (steady rates)")
    else:
        lines.append(f"large     {g.get('status')}")
    c = s.get("4 quickstart cpu", {})
    lines.append(f"qs cpu    {_rate(c)}; best val_acc {_num(c.get('best_val_acc'))}")
    if q.get("steady_per_min") and c.get("steady_per_min"):
        lines.append(f"          GPU / CPU: {q['steady_per_min'] / c['steady_per_min']:.2f}x (steady rates)")
    k = s.get("5 kill and resume", {})
    if "resume" in k:
        gone = (f"all {k['processes_at_kill']} child processes gone {k['workers_gone_s']} s after the kill"
                if not k["survivors_after_5s"] else f"SURVIVORS: {k['survivors_after_5s']}")  # fmt: skip
        lines.append(f"kill      {k['device']}: killed at {k['rows_at_kill']} evaluations; {gone}; resumed to "
                     f"{k['evaluations']}/{k['expected']}, {k['failed']} failed: {k['status']}")  # fmt: skip
    else:
        lines.append(f"kill      {k.get('status')}")
    bad = [name for name, r in s.items() if not str(r.get("status", "")).startswith(("ok", "skipped"))]
    lines.append(f"result    {'all steps ok' if not bad else 'problems in: ' + ', '.join(bad)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT") or "gpu_check_out", help="output folder (default $OUT, else gpu_check_out/)")
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny budgets, CUDA steps skipped: test the script without a GPU")
    args = parser.parse_args(argv)
    smoke = args.cpu_smoke
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "runs").mkdir(exist_ok=True)
    started = time.monotonic()
    deadline = started + (SMOKE_BUDGET_S if smoke else TOTAL_BUDGET_S)
    env, notes = evonas_env(out)
    report: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "smoke": smoke, "notes": notes, "steps": {}}

    def save() -> None:
        report["total_s"] = round(time.monotonic() - started, 1)
        (out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))

    def budget(seconds: float) -> float:
        return max(5.0, min(seconds, deadline - time.monotonic()))

    # budgets (s) on the GPU machine: 55 + 105 + 125 + 45 + 100 = 430, each cut to what is left of the 450
    env_result = guarded("1 environment", lambda: step_environment(out, env, budget(60 if smoke else 55), smoke), report, save)
    gpu = bool(env_result.get("cuda_devices"))
    if not gpu and not smoke and "cuda_devices" not in env_result:
        gpu = _cuda_visible(env)
    no_gpu = "no GPU (torch sees no CUDA device)"
    if gpu:
        guarded("2 quickstart gpu", lambda: step_quickstart_gpu(out, env, budget(105), smoke), report, save)
        guarded("3 large gpu", lambda: step_large_gpu(out, env, budget(125), smoke), report, save)
    else:
        for name in ("2 quickstart gpu", "3 large gpu"):
            report["steps"][name] = skipped(no_gpu)
            print(f"{name}: skipped, {no_gpu}", flush=True)
    guarded("4 quickstart cpu", lambda: step_quickstart_cpu(out, budget(90 if smoke else 45), smoke), report, save)
    guarded("5 kill and resume", lambda: step_kill_resume(out, env, budget(150 if smoke else 100), smoke, gpu), report, save)
    save()
    text = summary(report)
    (out / "gpu_check.txt").write_text(text + "\n")
    print(text)
    print(f"written   {out / 'gpu_check.json'}, {out / 'gpu_check.txt'}")
    return 0


def _cuda_visible(env: dict[str, str]) -> bool:
    code = "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=120).returncode == 0


if __name__ == "__main__":
    sys.exit(main())
