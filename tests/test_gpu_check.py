"""benchmarks/gpu_check.py: its CPU smoke test end to end, and the helpers its GPU steps rely on."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, toy_experiment
from evonas.cli import main

_spec = importlib.util.spec_from_file_location("gpu_check_under_test", REPO / "benchmarks" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_check)  # type: ignore[union-attr]


def test_cpu_smoke_runs_every_step_it_can(tmp_path: Path) -> None:
    """The whole script without a GPU (about 30 s on 2 idle cores): CUDA steps skipped with a 'no GPU' line,
    the CPU quickstart, and a run killed with SIGKILL mid-run whose workers all end and whose resume completes."""
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "OUT"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--cpu-smoke", "--out", str(out)],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=400,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((out / "gpu_check.json").read_text())
    steps = report["steps"]
    assert steps["2 quickstart gpu"]["status"].startswith("skipped: no GPU")
    assert steps["3 large gpu"]["status"].startswith("skipped: no GPU")
    cpu = steps["4 quickstart cpu"]
    assert cpu["status"] == "ok" and cpu["evaluations"] == 16 and cpu["failed"] == 0 and cpu["per_min"] > 0
    kill = steps["5 kill and resume"]
    assert kill["status"] == "ok", kill
    assert kill["survivors_after_5s"] == [] and kill["processes_at_kill"] >= 2
    assert 6 <= kill["rows_at_kill"] < 24 and kill["evaluations"] == kill["expected"] == 24
    text = (out / "gpu_check.txt").read_text()
    assert "qs gpu    skipped: no GPU" in text and "result    all steps ok" in text
    assert text.strip() in proc.stdout


def test_journal_stats(tmp_path: Path, write_experiment) -> None:
    run = tmp_path / "run"
    assert main(["run", str(write_experiment(toy_experiment())), "--out", str(run), "--quiet"]) == 0
    stats = gpu_check.journal_stats(run)
    assert stats["evaluations"] == stats["ok"] == 8 + 8 * 3 and stats["failed"] == 0
    assert stats["workers"] == 1 and stats["gpu_peak_alloc_mb"] is None and 0 < stats["best_val_acc"] <= 1
    assert stats["safe_mode"] == 0
    assert stats["steady_per_min"] > 0
    assert gpu_check.journal_stats(tmp_path / "nothing") == {"evaluations": 0, "note": "no journal"}


def test_peak_memory_fitness_is_registered_only_as_the_plugin(tmp_path: Path) -> None:
    from evonas.fitness import FITNESSES

    assert gpu_check.PEAK_FITNESS not in FITNESSES.list()  # importing the script registers nothing
    env, _ = gpu_check.evonas_env(tmp_path)
    assert env["EVONAS_CACHE"] == str(tmp_path / "evaluations.sqlite")
    code = (
        "import random; from evonas.fitness import FITNESSES; import gpu_check; "
        "from evonas.spaces import make_space; from evonas.datasets import load_dataset; "
        "s = make_space('chain', {'max_layers': 1}); g = s.sample(rng=random.Random(0)); "
        "f = FITNESSES.get('train_peak_mem')(epochs=1, device='cpu'); "
        "m = f.evaluate(g, space=s, dataset=load_dataset('synthetic', seed=0, n_samples=64), seed=0); "
        "print(m['cuda'], m['gpu_peak_alloc_mb'], m['gpu_peak_reserved_mb'], 0 <= m['val_acc'] <= 1)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0.0", "0.0", "0.0", "True"]


def test_children_and_alive() -> None:
    parent = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                               "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); time.sleep(30)"])  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not gpu_check._children(parent.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        (child,) = gpu_check._children(parent.pid)
        assert gpu_check._alive(child) and "time.sleep(30)" in gpu_check._cmdline(child)
        os.kill(child, 9)
        deadline = time.monotonic() + 10
        while gpu_check._alive(child) and time.monotonic() < deadline:  # a zombie until its parent reaps it: not alive
            time.sleep(0.05)
        assert not gpu_check._alive(child)
    finally:
        parent.kill()
        parent.wait()


@pytest.mark.parametrize("cuda", [False, True])
def test_summary_lines(cuda: bool) -> None:
    run = {"status": "ok", "evaluations": 112, "failed": 0, "wall_s": 40.0, "per_min": 168.0, "steady_per_min": 200.0,
           "best_val_acc": 0.99, "on_cuda": "112/112", "gpu_peak_alloc_mb": 50.0, "gpu_peak_reserved_mb": 64.0}  # fmt: skip
    steps = {
        "1 environment": {"status": "ok", "python": "3.12.1", "torch": "2.13.0", "build": "CUDA 13.0",
                          "cuda_devices": [{"name": "NVIDIA H200", "total_gib": 139.8, "free_gib": 139.0}] if cuda else [],
                          "amp_auto": "bf16" if cuda else "fp32", "cpu": "x", "cores": 16, "default_workers": 1,
                          "selftests": {"mlp": "ok", "nb201": "aborted in native code (SIGABRT)"}, "verdict": "problems: ..."},
        "2 quickstart gpu": run if cuda else {"status": "skipped: no GPU"},
        "3 large gpu": {"status": "ok", "one_worker": run, "four_workers": run, "speedup_4_vs_1": 1.0} if cuda else {"status": "skipped: no GPU"},
        "4 quickstart cpu": {**run, "steady_per_min": 100.0},
        "5 kill and resume": {"status": "ok", "resume": {}, "device": "cpu", "rows_at_kill": 6, "processes_at_kill": 3,
                              "survivors_after_5s": [], "workers_gone_s": 0.5, "evaluations": 24, "expected": 24, "failed": 0},
    }  # fmt: skip
    text = gpu_check.summary({"started": "now", "smoke": not cuda, "total_s": 1.0, "notes": [], "steps": steps})
    assert "doctor    self-tests 1/2 passed: nb201 aborted in native code (SIGABRT)" in text
    assert "kill      cpu: killed at 6 evaluations; all 3 child processes gone 0.5 s after the kill; resumed to 24/24" in text
    assert text.endswith("result    all steps ok")
    if cuda:
        assert "NVIDIA H200 (139.8 GiB, 139.0 free)" in text and "GPU / CPU: 2.00x" in text
    else:
        assert "qs gpu    skipped: no GPU" in text and "GPU / CPU" not in text
