"""What evonas will use on this machine, and whether it can train here: ``evonas doctor``.

:func:`collect` gathers the versions (Python, torch and its build, oneDNN, DEAP,
numpy, Ray), the CUDA devices, the CPU (model, usable cores, the instruction
set extensions torch's kernels care about), the workers a run starts by
default, memory, and what ``amp: auto`` resolves to; then it runs the
self-tests: a few optimizer steps of the ``train`` fitness (forward, backward,
fused optimizer step, validation) for small networks of each built-in space,
each in a child process of its own with a time limit, so that a native crash
(SIGABRT, SIGSEGV) or a hang in torch's kernels is reported as a failed check
rather than ending the doctor. :func:`format_report` prints the report as
aligned ``label     value`` lines, ending with a one-line verdict.

Example::

    from evonas.doctor import collect, format_report
    report = collect()
    print(format_report(report))
    report["exit_code"]   # 0: evonas can run here
"""

from __future__ import annotations

import dataclasses
import faulthandler
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping, Sequence

from evonas import __version__
from evonas.engine.backends import default_workers, usable_cores
from evonas.engine.pool import describe_exit as worker_exit  # the words a run's journal uses
from evonas.engine.pool import meminfo_gib

__all__ = ["SELFTESTS", "SelfTest", "collect", "format_report", "run_selftests", "describe_exit"]

#: intra-op threads per worker: the local backend's default ``num_cpus`` (evonas/engine/pool.py)
THREADS_PER_WORKER = 1
#: seconds a self-test child may run before it is reported as hung and killed
DEFAULT_TIMEOUT = 60.0
#: a fault to inject into named self-test children, for evonas's own tests: ``NAME=abort|segv|hang|error[,...]``
FAULT_VARIABLE = "EVONAS_DOCTOR_FAULT"
#: the CPU flags (/proc/cpuinfo) that decide which of torch's CPU kernels run, and whether bf16 is native
CPU_FEATURES = ("avx2", "avx512f", "avx512_bf16", "amx")


@dataclasses.dataclass(frozen=True)
class SelfTest:
    """One self-test: a genome of a built-in space trained briefly on ``synthetic`` data of ``shape``.

    ``variant`` ``"default"`` trains the way a run does (channels_last for images, ``amp: auto``);
    ``"fp32"`` with contiguous tensors and no autocast.
    """

    name: str
    space: str
    genome: Mapping[str, Any]
    shape: tuple[int, ...]
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    variant: str = "default"
    about: str = ""


def _conv(kernel: int, width: int, stride: int = 1, activation: str = "relu", bn: bool = True, res: bool = False) -> dict[str, Any]:
    return {"kernel": kernel, "width": width, "stride": stride, "activation": activation, "batch_norm": bn, "residual": res}


# A residual stride-2 first layer: a strided 1x1 projection beside a strided 3x3 convolution, straight on the
# input. oneDNN's strided 1x1 kernel corrupts the heap for it on AVX2 CPUs with fewer than 8 input channels in
# channels_last (benchmarks/onednn_repro.py); the chain space decodes it as SubsampledConv2d, which these tests
# check. Then kernel sizes 5 and 1, an identity skip, a layer without batch norm.
_CHAIN_S2RES = {
    "layers": [_conv(3, 16, 2, "silu", True, True), _conv(5, 32, 1, "gelu", True), _conv(1, 32, 1, "relu", False, True)],
    "lr": 0.003, "optimizer": "adam", "weight_decay": 0.0, "batch_size": 32,
}  # fmt: skip
# every kernel size, identity and projection skips past the first layer, no-bn, the activations
_CHAIN_3CH = {
    "layers": [_conv(3, 32, 1, "silu", True), _conv(3, 32, 1, "relu", True, True), _conv(5, 48, 2, "gelu", False, True),
               _conv(1, 64, 1, "relu", True)],
    "lr": 0.003, "optimizer": "adamw", "weight_decay": 1e-4, "batch_size": 32,
}  # fmt: skip
_MLP = {
    "layers": [{"width": 64, "activation": "relu", "dropout": 0.1}, {"width": 32, "activation": "gelu", "dropout": 0.0},
               {"width": 16, "activation": "tanh", "dropout": 0.2}],
    "lr": 0.01, "optimizer": "sgd", "weight_decay": 1e-4, "batch_size": 32,
}  # fmt: skip
# every op of the cell on one of its edges (none of them pruned), in a network of 1 cell per stage
_NB201 = {"edges": ["nor_conv_3x3", "nor_conv_1x1", "skip_connect", "avg_pool_3x3", "none", "nor_conv_3x3"]}

SELFTESTS: tuple[SelfTest, ...] = (
    SelfTest("chain-s2res-1ch", "chain", _CHAIN_S2RES, (1, 8, 8), about="residual stride-2 first layer, 1x8x8"),
    SelfTest("chain-s2res-3ch", "chain", _CHAIN_S2RES, (3, 16, 16), about="residual stride-2 first layer, 3x16x16"),
    SelfTest("chain-3ch", "chain", _CHAIN_3CH, (3, 16, 16), about="kernels 1/3/5, skips, no-bn, 3x16x16"),
    SelfTest("mlp", "mlp", _MLP, (16,), about="linear, dropout, sgd, 16 features"),
    SelfTest("nb201", "nb201", _NB201, (3, 16, 16), {"C": 8, "N": 1}, about="every cell op, C=8 N=1, 3x16x16"),
    SelfTest("chain-s2res-1ch/fp32", "chain", _CHAIN_S2RES, (1, 8, 8), variant="fp32", about="contiguous, no autocast"),
    SelfTest("chain-s2res-3ch/fp32", "chain", _CHAIN_S2RES, (3, 16, 16), variant="fp32", about="contiguous, no autocast"),
)

#: training settings of every self-test: 2 epochs of ~77 samples in batches of 32 = 6 optimizer steps
_SAMPLES, _CLASSES, _EPOCHS = 128, 4, 2

# -- the self-tests ---------------------------------------------------------------
def describe_exit(returncode: int, stderr: str = "") -> tuple[str, str | None]:
    """``(what happened, signal name or None)`` for a self-test child that exited with ``returncode``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        text = worker_exit(returncode)
        where = _crash_site(stderr)
        return (f"{text} {where}" if where else text), name
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt)\b", line)]
    last = errors[-1] if errors else (lines[-1] if lines else "no output")
    return f"exit code {returncode}: {last[:300]}", None


def _crash_site(stderr: str) -> str:
    """The innermost Python frame of faulthandler's dump, e.g. ``in _conv_forward (torch/nn/modules/conv.py:548)``."""
    match = re.search(r'File "([^"]+)", line (\d+) in (\S+)', stderr)
    if not match:
        return ""
    parts = Path(match.group(1)).parts
    for i, part in enumerate(parts):  # from the package on: torch/nn/modules/conv.py, evonas/doctor.py
        if part in ("site-packages", "dist-packages"):
            parts = parts[i + 1 :]
            break
    else:
        parts = parts[-2:]
    path = "/".join(parts)
    return f"in {match.group(3)} ({path}:{match.group(2)})"


def _faults(faults: Mapping[str, str] | None) -> dict[str, str]:
    out = {}
    for part in os.environ.get(FAULT_VARIABLE, "").split(","):
        if "=" in part:
            name, kind = part.split("=", 1)
            out[name.strip()] = kind.strip()
    out.update(faults or {})
    return out


def _child_env() -> dict[str, str]:
    """The environment of a self-test child: a worker's thread settings, and this evonas importable."""
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(THREADS_PER_WORKER)
    root = Path(__file__).resolve().parents[1]
    if root.name not in ("site-packages", "dist-packages"):  # a checkout: the child imports the same evonas
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    return env


_CHILD_CODE = "from evonas.doctor import _child; _child()"


def run_selftests(
    tests: Sequence[SelfTest] = SELFTESTS,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    jobs: int | None = None,
    device: str = "auto",
    faults: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Run each self-test in a child process of its own, ``jobs`` at a time (default: 2, 1 on one core).

    A child that crashes, exits with an error or runs past ``timeout`` seconds (then it is killed) is a
    failed check; nothing it does ends this process. ``faults`` (``{name: "abort" | "segv" | "hang" |
    "error"}``, also read from ``$EVONAS_DOCTOR_FAULT``) makes the named children fail on purpose.
    """
    faults = _faults(faults)
    jobs = jobs or max(1, min(2, usable_cores()))
    env = _child_env()
    queue = list(tests)
    running: list[tuple[SelfTest, subprocess.Popen[bytes], Any, Any, float]] = []
    results: dict[str, dict[str, Any]] = {}
    while queue or running:
        while queue and len(running) < jobs:
            test = queue.pop(0)
            spec = {**dataclasses.asdict(test), "device": device, "fault": faults.get(test.name)}
            out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
            proc = subprocess.Popen(
                [sys.executable, "-c", _CHILD_CODE, json.dumps(spec)], stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env
            )
            running.append((test, proc, out, err, time.monotonic()))
        time.sleep(0.02)
        for item in list(running):
            test, proc, out, err, started = item
            elapsed = time.monotonic() - started
            hung = proc.poll() is None and elapsed > timeout
            if proc.returncode is None and not hung:
                continue
            if hung:
                proc.kill()
                proc.wait()
            running.remove(item)
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
            out.close()
            err.close()
            results[test.name] = _result(test, proc.returncode, stdout, stderr, elapsed, hung, timeout)
    return [results[t.name] for t in tests]


def _result(test: SelfTest, rc: int, stdout: str, stderr: str, seconds: float, hung: bool, timeout: float) -> dict[str, Any]:
    result: dict[str, Any] = {
        "name": test.name, "space": test.space, "variant": test.variant, "about": test.about, "ok": False,
        "error": None, "signal": None, "seconds": round(seconds, 2), "metrics": None,
    }  # fmt: skip
    if hung:
        result["error"] = f"hung: killed after {timeout:g} s"
        return result
    if rc != 0:
        result["error"], result["signal"] = describe_exit(rc, stderr if rc > 0 else "")
        result["site"] = _crash_site(stderr) or None if rc < 0 else None  # the Python frame of a native crash
        result["stderr_tail"] = stderr[-2000:]
        return result
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    try:
        result["metrics"] = json.loads(lines[-1])
    except (IndexError, ValueError):
        result["error"] = f"no result from the child (its output: {stdout.strip()[-200:]!r})"
        return result
    result["ok"] = True
    return result


def _child() -> None:
    """A self-test child: train the genome of ``sys.argv[1]`` (a :class:`SelfTest` as JSON) and print its metrics."""
    faulthandler.enable()  # a native crash prints the Python frame it happened in (the parent reports it)
    spec = json.loads(sys.argv[1])
    start = time.perf_counter()
    # torch (through the trainer and the space's networks): the child's start-up is part of what it times,
    # and the parent process must run when torch cannot be imported
    from evonas.datasets.loaders import load_synthetic
    from evonas.fitness import train as train_module
    from evonas.fitness.train import TrainFitness
    from evonas.spaces import make_space

    # FLOP counting imports torch's compiler stack (1.5 s a process here) and trains nothing: skipped.
    train_module.count_flops = lambda *args, **kwargs: 0  # type: ignore[assignment]
    space = make_space(spec["space"], dict(spec["params"]))
    genome = space.from_dict(spec["genome"])
    dataset = load_synthetic(seed=0, n_samples=_SAMPLES, num_classes=_CLASSES, shape=list(spec["shape"]))
    plain = spec["variant"] == "fp32"
    fitness = TrainFitness(
        epochs=_EPOCHS, device=spec["device"], threads=THREADS_PER_WORKER, channels_last=not plain, amp="off" if plain else "auto"
    )
    device, dtype = fitness._resolve()
    _inject(spec.get("fault"))
    metrics = fitness.evaluate(genome, space=space, dataset=dataset, seed=0)
    hp = space.hparams(genome)
    batch = min(int(hp.get("batch_size", fitness.defaults["batch_size"])), len(dataset.y_train))
    n = len(dataset.y_train)
    steps = _EPOCHS * len([s for s in range(0, n, batch) if min(batch, n - s) >= 2 or s == 0])
    print(json.dumps({
        "device": str(device), "amp": _dtype_name(dtype), "channels_last": fitness.channels_last and len(spec["shape"]) == 3,
        "optimizer": hp.get("optimizer", fitness.defaults["optimizer"]), "steps": steps,
        "describe": space.describe(genome), "val_acc": metrics["val_acc"], "train_loss": metrics["train_loss"],
        "train_s": round(metrics["train_s"], 3), "child_s": round(time.perf_counter() - start, 3),
    }), flush=True)  # fmt: skip


def _inject(fault: str | None) -> None:
    if fault == "abort":
        os.abort()
    elif fault == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif fault == "hang":
        time.sleep(10**6)
    elif fault == "error":
        raise RuntimeError("injected error")


# -- the machine ------------------------------------------------------------------
def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _cpu() -> dict[str, Any]:
    info = _read("/proc/cpuinfo")
    model = re.search(r"^model name\s*:\s*(.+)$", info, re.M)
    flags_line = re.search(r"^flags\s*:\s*(.+)$", info, re.M)
    flags = set(flags_line.group(1).split()) if flags_line else None
    features: dict[str, Any] | None = None
    if flags is not None:
        features = {name: name in flags for name in CPU_FEATURES if name != "amx"}
        features["amx"] = sorted(f for f in flags if f.startswith("amx"))
    return {
        "model": model.group(1).strip() if model else (platform.processor() or platform.machine() or "unknown"),
        "cores_usable": usable_cores(), "cores_online": os.cpu_count(), "features": features,
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
    }  # fmt: skip


def _memory() -> dict[str, float | None]:
    def gib(key: str) -> float | None:
        value = meminfo_gib(key)
        return None if value is None else round(value, 1)

    return {"total_gib": gib("MemTotal"), "available_gib": gib("MemAvailable")}


def _version(module: str) -> str | None:
    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        pass
    try:
        return str(getattr(__import__(module), "__version__", "installed"))
    except Exception:
        return None


def _dtype_name(dtype: Any) -> str:
    return {"torch.bfloat16": "bf16", "torch.float16": "fp16"}.get(str(dtype), "fp32")


def _torch() -> dict[str, Any]:
    """torch's version, build, oneDNN, CUDA devices and CPU kernels; ``{"error": ...}`` if it cannot be imported."""
    try:
        import torch  # torch: the report says why it cannot be imported, instead of failing
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    out: dict[str, Any] = {"version": torch.__version__, "cuda_build": torch.version.cuda, "hip_build": getattr(torch.version, "hip", None)}
    out["build"] = f"CUDA {out['cuda_build']}" if out["cuda_build"] else (f"ROCm {out['hip_build']}" if out["hip_build"] else "CPU")
    try:
        config = torch.__config__.show()
    except Exception:
        config = ""
    match = re.search(r"(?:oneDNN|MKL-DNN)\s+v?([\d.]+)", config)
    out["onednn"] = {"available": bool(torch.backends.mkldnn.is_available()), "version": match.group(1) if match else None}
    get_capability = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", None)
    out["cpu_capability"] = get_capability() if get_capability else None
    out["threads_default"] = torch.get_num_threads()
    devices = []
    try:
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:
        count = 0
    for i in range(count):
        props = torch.cuda.get_device_properties(i)
        device: dict[str, Any] = {"index": i, "name": props.name, "total_gib": round(props.total_memory / 2**30, 1),
                                  "capability": f"{props.major}.{props.minor}"}  # fmt: skip
        try:
            free, total = torch.cuda.mem_get_info(i)
            device.update(free_gib=round(free / 2**30, 1), total_gib=round(total / 2**30, 1))
        except Exception as exc:
            device["free_gib"], device["error"] = None, f"{type(exc).__name__}: {exc}"
        try:
            with torch.cuda.device(i):
                device["bf16"] = bool(torch.cuda.is_bf16_supported())
        except Exception:
            device["bf16"] = None
        devices.append(device)
    out["cuda_devices"] = devices
    return out


def _amp() -> dict[str, Any]:
    # torch: only once _torch() found it importable
    import torch

    from evonas.fitness.device import amp_dtype, auto_device, cpu_has_native_bf16

    device = auto_device()
    return {"device": device, "auto": _dtype_name(amp_dtype("auto", torch.device(device))), "cpu_native_bf16": cpu_has_native_bf16()}


# -- the report -------------------------------------------------------------------
def collect(
    *,
    selftest: bool = True,
    tests: Sequence[SelfTest] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    jobs: int | None = None,
    device: str = "auto",
    faults: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Everything ``evonas doctor`` reports, as a JSON-ready dict; ``exit_code`` 0 when evonas can run here.

    The self-test children start first and run while this process reads the rest.
    """
    start = time.monotonic()
    selftests: list[dict[str, Any]] = []
    runner = None
    if selftest:
        def run() -> None:
            selftests.extend(run_selftests(SELFTESTS if tests is None else tests, timeout=timeout, jobs=jobs, device=device, faults=faults))

        runner = threading.Thread(target=run, daemon=True)
        runner.start()
    report: dict[str, Any] = {
        "python": {"version": platform.python_version(), "executable": sys.executable},
        "evonas": f"{__version__} ({Path(__file__).resolve().parent})",
    }
    report["torch"] = _torch()
    report["deap"], report["numpy"] = _version("deap"), _version("numpy")
    report["cpu"] = _cpu()
    report["memory"] = _memory()
    torch_ok = "error" not in report["torch"]
    workers: dict[str, Any] = {"threads_per_worker": THREADS_PER_WORKER}
    if torch_ok:
        workers["default"] = default_workers()
        report["amp"] = _amp()
    else:
        report["amp"] = None
    report["workers"] = workers
    report["ray"] = _version("ray")
    if runner is not None:
        runner.join()
    report["selftests"] = selftests
    report["selftest_s"] = round(time.monotonic() - start, 2)
    report["selftest_jobs"] = jobs or max(1, min(2, usable_cores()))
    report["selftest_timeout_s"] = timeout
    report["verdict"] = _verdict(report, ran_selftests=selftest)
    report["exit_code"] = 0 if report["verdict"]["state"] != "cannot run" else 1
    return report


def _verdict(report: Mapping[str, Any], *, ran_selftests: bool) -> dict[str, Any]:
    torch_info = report["torch"]
    if "error" in torch_info:
        text = f"cannot run: torch cannot be imported ({torch_info['error']}); install torch first (README, Set up)"
        return {"state": "cannot run", "text": text}
    tests = report["selftests"]
    failed = [t for t in tests if not t["ok"]]
    devices = torch_info["cuda_devices"]
    n = report["workers"].get("default")
    if devices:
        names = sorted({d["name"] for d in devices})
        where = f"{n} worker{'s' * (n != 1)} on {len(devices)} GPU{'s' * (len(devices) != 1)} ({', '.join(names)})"
    else:
        cores = report["cpu"]["cores_usable"]
        where = f"{n} worker{'s' * (n != 1)} on {cores} CPU core{'s' * (cores != 1)}"
    precision = report["amp"]["auto"] if report["amp"] else "fp32"
    precision = precision if precision == "fp32" else f"{precision} autocast"
    if not ran_selftests:
        return {"state": "ready", "text": f"ready: {where}, {precision} (self-tests not run)"}
    if not failed:
        return {"state": "ready", "text": f"ready: {where}, {precision}, all {len(tests)} self-tests passed"}
    by_error: dict[str, list[str]] = {}
    for t in failed:
        by_error.setdefault(t["error"], []).append(t["name"])
    what = "; ".join(f"{', '.join(names)} {error}" for error, names in by_error.items())
    if len(failed) == len(tests):
        text = f"cannot run: every self-test failed ({what}); {_advice(report, failed, can_run=False)}"
        return {"state": "cannot run", "text": text}
    text = f"problems: {len(failed)} of {len(tests)} self-tests failed ({what}); {_advice(report, failed)}"
    return {"state": "problems", "text": text}


def _advice(report: Mapping[str, Any], failed: Sequence[Mapping[str, Any]], *, can_run: bool = True) -> str:
    """What the failed self-tests mean for a run, and what to do about them."""
    advice = []
    crashed = [t for t in failed if t["signal"]]
    if crashed:
        torch_info = report["torch"]
        where = "on the GPU" if torch_info["cuda_devices"] else (
            f"in torch's CPU kernels (oneDNN {torch_info['onednn']['version'] or '?'}, {torch_info['cpu_capability'] or '?'}, "
            f"{report['cpu']['model']})"
        )  # fmt: skip
        advice.append(f"a native crash {where}" + ("; runs go on (a run retries such an evaluation once in safe mode: "
                                                   "oneDNN off, fp32, contiguous, slower)" if can_run else ""))  # fmt: skip
        fixes = []
        passed = {t["name"] for t in report["selftests"] if t["ok"]}
        if all(t["variant"] == "default" and f"{t['name']}/fp32" in passed for t in crashed):
            if (report.get("amp") or {}).get("auto") == "fp32":  # the layout is the only difference
                fixes.append("set fitness.params.channels_last=false (these networks pass contiguous)")
            else:
                fixes.append("set fitness.params.channels_last=false and fitness.params.amp=off (these networks pass so)")
        if not torch_info["cuda_devices"]:
            isa = "AVX2" if str(torch_info["cpu_capability"]).startswith("AVX512") else "AVX"
            fixes.append(f"set ONEDNN_MAX_CPU_ISA={isa} (check: ONEDNN_MAX_CPU_ISA={isa} evonas doctor)")
        fixes.append("try another torch version")
        advice.append("to avoid it, " + ", or ".join(fixes))
    if any((t["error"] or "").startswith("hung") for t in failed):
        advice.append("a hung evaluation is stopped at the run's time limit (timeout:) and retried in safe mode")
    if any("evonas.genomes" in (t["error"] or "") for t in failed):
        advice.append("install evonas (pip install -e .): a checkout that is only on PYTHONPATH does not find its "
                      "space declarations (genomes/, the package evonas.genomes once installed)")  # fmt: skip
    elif any(t["error"] and not t["signal"] and not t["error"].startswith("hung") for t in failed):
        advice.append("evonas doctor --json has each failed child's stderr")
    return "; ".join(advice)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def format_report(report: Mapping[str, Any]) -> str:
    """The report as the lines ``evonas doctor`` prints."""
    lines = [f"python    {report['python']['version']}  ({report['python']['executable']})"]
    lines.append(f"evonas    {report['evonas']}")
    t = report["torch"]
    if "error" in t:
        lines.append(f"torch     cannot be imported: {t['error']}")
    else:
        lines.append(f"torch     {t['version']}, {t['build']} build")
        dnn = t["onednn"]
        lines.append(f"onednn    {'v' + dnn['version'] if dnn['version'] else 'version unknown'}"
                     f"{'' if dnn['available'] else ' (not available to torch)'}")  # fmt: skip
    lines.append(f"deap      {report['deap'] or 'not installed'}")
    lines.append(f"numpy     {report['numpy'] or 'not installed'}")
    if "error" not in t:
        devices = t["cuda_devices"]
        if not devices:
            note = "CUDA build, but no GPU visible: evonas trains on the CPU" if t["cuda_build"] else "CPU build of torch"
            lines.append(f"cuda      none ({note})")
        else:
            lines.append(f"cuda      {len(devices)} device{'s' * (len(devices) != 1)} (CUDA {t['cuda_build'] or '?'})")
            for d in devices:
                free = f"{d['free_gib']} GiB free" if d.get("free_gib") is not None else f"free unknown ({d.get('error')})"
                lines.append(f"  cuda:{d['index']:<4} {d['name']}  {d['total_gib']} GiB total, {free}, bf16 "
                             f"{'?' if d['bf16'] is None else _yes(d['bf16'])}, compute {d['capability']}")  # fmt: skip
    cpu = report["cpu"]
    line = f"cpu       {cpu['model']}; {cpu['cores_usable']} cores usable ({cpu['cores_online']} online)"
    feats = cpu["features"]
    if feats is None:
        line += "; instruction set extensions unknown (no /proc/cpuinfo)"
    else:
        parts = [f"{name} {_yes(feats[name])}" for name in CPU_FEATURES if name != "amx"]
        parts.append(f"amx {'(' + ' '.join(feats['amx']) + ')' if feats['amx'] else 'no'}")
        line += "; " + ", ".join(parts)
    if "error" not in t:
        line += f"; torch kernels {t['cpu_capability'] or '?'}"
    if cpu["onednn_max_cpu_isa"]:
        line += f"; ONEDNN_MAX_CPU_ISA={cpu['onednn_max_cpu_isa']}"
    lines.append(line)
    w = report["workers"]
    if "default" in w:
        per = "GPU" if "error" not in t and t["cuda_devices"] else "usable core"
        lines.append(f"workers   {w['default']} by default (one per {per}), {w['threads_per_worker']} intra-op thread each")
    mem = report["memory"]
    if mem["total_gib"] is not None:
        lines.append(f"memory    {mem['total_gib']} GiB total, {mem['available_gib']} GiB available")
    amp = report["amp"]
    if amp:
        lines.append(f"amp       auto -> {amp['auto']} on {amp['device']}; CPU native bf16: {_yes(amp['cpu_native_bf16'])}")
    tests = report["selftests"]
    if tests:
        passed = sum(t["ok"] for t in tests)
        lines.append(f"selftest  {passed} passed, {len(tests) - passed} failed in {report['selftest_s']:.1f} s "
                     f"(each in its own process, {report['selftest_jobs']} at a time, limit {report['selftest_timeout_s']:g} s each)")  # fmt: skip
        width = max(len(t["name"]) for t in tests)
        for t in tests:
            if t["ok"]:
                m = t["metrics"]
                how = f"{m['device']}, {'channels_last' if m['channels_last'] else 'contiguous'}, {m['amp']}, {m['optimizer']}"
                lines.append(f"  {t['name']:<{width}}  ok      {m['steps']} steps in {m['train_s']:.2f} s ({t['seconds']:.1f} s with "
                             f"start-up), {how}: {m['describe']}")  # fmt: skip
            else:
                site = f" {t['site']}" if t.get("site") else ""
                lines.append(f"  {t['name']:<{width}}  FAILED  {t['error']}{site}  ({t['about']}, after {t['seconds']:.1f} s)")
    ray = report["ray"] or "not installed (pip install 'evonas[ray]', or pip install -e '.[ray]' in a checkout, for --backend ray)"
    lines.append(f"ray       {ray}")
    lines.append(f"verdict   {report['verdict']['text']}")
    return "\n".join(lines)
