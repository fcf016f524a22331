"""``evonas doctor``: the report, the verdict, and self-test children that crash or hang without ending the doctor."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time

from conftest import REPO
from evonas.cli import main
from evonas.doctor import SELFTESTS, collect, describe_exit, format_report, run_selftests

MLP = next(t for t in SELFTESTS if t.name == "mlp")


def test_doctor_prints_its_report_and_a_verdict(capsys, monkeypatch) -> None:
    """The text report, with two self-tests that pass on any machine (the full set runs in the next test)."""
    monkeypatch.setattr("evonas.doctor.SELFTESTS", tuple(t for t in SELFTESTS if t.name in ("chain-3ch", "mlp")))
    assert main(["doctor"]) == 0
    lines = capsys.readouterr().out.splitlines()
    labels = [line.split()[0] for line in lines if line and not line.startswith(" ")]
    assert labels == ["python", "evonas", "torch", "onednn", "deap", "numpy", "cuda", "cpu", "workers", "memory", "amp",
                      "selftest", "ray", "verdict"]  # fmt: skip
    rows = [line for line in lines if line.startswith("  ") and " ok " in line]
    assert len(rows) == 2 and "6 steps in" in rows[0]
    assert re.fullmatch(r"verdict   ready: \d+ workers? on \d+ (CPU cores?|GPUs? \(.*\)), \S+( autocast)?, all 2 self-tests passed",
                        lines[-1]), lines[-1]  # fmt: skip


def test_json_and_a_native_crash_in_one_child() -> None:
    """A child that aborts (as oneDNN does on some CPUs) is one failed check; the doctor goes on and exits 0."""
    env = {**os.environ, "EVONAS_DOCTOR_FAULT": "mlp=abort", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "evonas.cli", "doctor", "--json"], capture_output=True, text=True, env=env, cwd=REPO, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    tests = {t["name"]: t for t in report["selftests"]}
    assert list(tests) == [t.name for t in SELFTESTS]
    crashed = tests["mlp"]
    assert not crashed["ok"] and crashed["signal"] == "SIGABRT"
    assert crashed["error"] == "aborted in native code (SIGABRT)"
    assert crashed["site"].startswith("in _inject (evonas/doctor.py:")  # faulthandler's innermost frame
    assert tests["chain-3ch"]["ok"] and tests["nb201"]["ok"], tests  # the others ran after it
    # every other self-test trains here, or fails with the native crash it met (on this 2-core AMD EPYC machine:
    # oneDNN's AVX2 1x1 backward-weights kernel on 3-channel channels_last input), never with a Python error
    others = [t for name, t in tests.items() if name != "mlp"]
    assert all(t["ok"] or t["signal"] for t in others), others
    assert report["verdict"]["state"] == "problems" and "mlp aborted in native code (SIGABRT))" in report["verdict"]["text"]
    assert report["exit_code"] == 0
    text = format_report(report)
    assert "\n  mlp                   FAILED  aborted in native code (SIGABRT) in _inject" in text
    assert text.splitlines()[-1].startswith("verdict   problems: ")


def test_hanging_child_is_killed_after_its_timeout() -> None:
    start = time.monotonic()
    (result,) = run_selftests([MLP], timeout=3, faults={"mlp": "hang"})
    assert time.monotonic() - start < 60  # killed, not waited for (a loaded machine starts torch slowly)
    assert not result["ok"] and result["error"] == "hung: killed after 3 s"
    assert result["seconds"] >= 3


def test_segfault_and_python_error_are_named() -> None:
    other = dataclasses.replace(MLP, name="mlp-2")
    segv, error = run_selftests([MLP, other], faults={"mlp": "segv", "mlp-2": "error"})
    assert not segv["ok"] and segv["signal"] == "SIGSEGV" and segv["error"] == "segmentation fault in native code (SIGSEGV)"
    assert not error["ok"] and error["signal"] is None
    assert error["error"] == "exit code 1: RuntimeError: injected error"


def test_every_self_test_failing_means_it_cannot_run() -> None:
    report = collect(tests=[MLP], faults={"mlp": "abort"})
    assert report["exit_code"] == 1
    assert report["verdict"]["text"].startswith("cannot run: every self-test failed (mlp aborted in native code (SIGABRT))")


def test_describe_exit() -> None:
    dump = (
        "Fatal Python error: Aborted\n\nCurrent thread 0x00007f (most recent call first):\n"
        '  File "/x/lib/python3.11/site-packages/torch/nn/modules/conv.py", line 548 in _conv_forward\n'
        '  File "/x/lib/python3.11/site-packages/torch/nn/modules/conv.py", line 553 in forward\n'
    )
    assert describe_exit(-signal.SIGABRT, dump) == (
        "aborted in native code (SIGABRT) in _conv_forward (torch/nn/modules/conv.py:548)", "SIGABRT"
    )
    assert describe_exit(-signal.SIGSEGV) == ("segmentation fault in native code (SIGSEGV)", "SIGSEGV")
    assert describe_exit(-signal.SIGUSR1) == ("killed by SIGUSR1", "SIGUSR1")
    assert describe_exit(2, "Traceback...\nValueError: bad\n") == ("exit code 2: ValueError: bad", None)


def test_advice_after_a_native_crash() -> None:
    from evonas.doctor import _advice

    tests = [
        {"name": "chain-3ch", "ok": False, "signal": "SIGABRT", "variant": "default", "error": "aborted in native code (SIGABRT)"},
        {"name": "chain-3ch/fp32", "ok": True, "signal": None, "variant": "fp32", "error": None},
    ]
    report = {
        "torch": {"cuda_devices": [], "onednn": {"version": "3.12.0"}, "cpu_capability": "AVX2"},
        "cpu": {"model": "AMD EPYC"}, "selftests": tests,
    }  # fmt: skip
    advice = _advice(report, tests[:1])
    assert "oneDNN 3.12.0, AVX2, AMD EPYC" in advice and "set ONEDNN_MAX_CPU_ISA=AVX (check: " in advice
    assert "runs go on (a run retries such an evaluation once in safe mode" in advice
    assert "fitness.params.channels_last=false" in advice
    tests[1].update(ok=False, signal="SIGABRT", error="aborted in native code (SIGABRT)")
    assert "channels_last" not in _advice(report, tests)  # the fp32 twin crashes too: not the way out


def test_verdict_ready_and_without_torch() -> None:
    from evonas.doctor import _verdict

    ok = {"ok": True, "name": "mlp", "variant": "default", "signal": None, "error": None}
    report = {
        "torch": {"cuda_devices": [{"name": "NVIDIA H200"}]}, "workers": {"default": 4}, "cpu": {"cores_usable": 16},
        "amp": {"auto": "bf16"}, "selftests": [ok, ok],
    }  # fmt: skip
    assert _verdict(report, ran_selftests=True) == {
        "state": "ready", "text": "ready: 4 workers on 1 GPU (NVIDIA H200), bf16 autocast, all 2 self-tests passed"
    }
    report.update(torch={"error": "ImportError: no torch"})
    assert _verdict(report, ran_selftests=True)["state"] == "cannot run"


def test_a_checkout_that_is_not_installed_is_named() -> None:
    from evonas.doctor import _verdict

    error = "exit code 1: ModuleNotFoundError: No module named 'evonas.genomes'"
    tests = [{"ok": False, "name": n, "variant": "default", "signal": None, "error": error} for n in ("mlp", "nb201")]
    report = {"torch": {"cuda_devices": []}, "workers": {"default": 2}, "cpu": {"cores_usable": 2}, "amp": {"auto": "fp32"},
              "selftests": tests}  # fmt: skip
    verdict = _verdict(report, ran_selftests=True)
    assert verdict["state"] == "cannot run"
    assert verdict["text"].startswith(f"cannot run: every self-test failed (mlp, nb201 {error}); install evonas (pip install -e .)")
