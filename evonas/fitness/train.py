"""The ``train`` fitness: a brief real training run, scored on the validation split.

The dataset's train and validation arrays are moved to the device once per process
and cached (keyed by the dataset object and device); batches are drawn by indexing
those tensors, so no ``DataLoader`` or host-to-device copy runs per step, and the loss
is checked for NaN / inf once per epoch, not per step (no per-step device sync).
The test split is never read.

Example::

    fitness = FITNESSES.get("train")(epochs=3)
    metrics = fitness.evaluate(genome, space=space, dataset=load_dataset("digits", seed=0), seed=0)
    metrics["val_acc"]   # fraction in [0, 1]
"""

from __future__ import annotations

import contextlib
import math
import time
import weakref
from typing import Any, Callable, ContextManager, Literal, Mapping, NamedTuple, get_args

import numpy as np
import torch
import torch.nn.functional as F

from evonas.checks import check_bool, check_choice, check_int, check_number
from evonas.datasets.base import Dataset
from evonas.fitness.base import FITNESSES, EvaluationError, FitnessFunction
from evonas.fitness.device import amp_dtype, auto_device, check_device, cpu_kernels, free_memory, in_safe_mode
from evonas.fitness.latency import measure_latency_ms
from evonas.pruners import Reporter, TrialPruned
from evonas.spaces.base import Genome, SearchSpace
from evonas.spaces.cost import count_flops

__all__ = ["TrainFitness"]

# the words these parameters allow: the annotations tell the config checker (a YAML ``amp: off`` is read as "off")
Optimizer = Literal["adam", "adamw", "sgd"]
Amp = Literal["off", "bf16", "fp16", "auto"]
Schedule = Literal["cosine", "constant"]
ClassWeight = Literal["none", "balanced"]
_OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
_AMPS: tuple[str, ...] = get_args(Amp)
_SCHEDULES: tuple[str, ...] = get_args(Schedule)
_CLASS_WEIGHTS: tuple[str, ...] = get_args(ClassWeight)
_GENOME_HPARAMS = ("lr", "optimizer", "weight_decay", "batch_size", "momentum")


class _DeviceData(NamedTuple):
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor


#: per-process cache: dataset (by identity, dropped with it) -> {(device, channels_last): tensors}
_DEVICE_DATA: "weakref.WeakKeyDictionary[Dataset, dict[tuple[str, bool], _DeviceData]]" = weakref.WeakKeyDictionary()


@FITNESSES.register("train")
class TrainFitness(FitnessFunction):
    """Train the decoded network for a few epochs; score accuracy on the validation split.

    ``lr``, ``optimizer``, ``weight_decay``, ``batch_size`` and ``momentum`` are defaults:
    values from ``space.hparams(genome)`` win. ``device="auto"`` picks CUDA when available.
    ``threads`` sets ``torch.set_num_threads`` (0 leaves it alone). ``amp``: ``off``,
    ``bf16``, ``fp16`` (with gradient scaling) or ``auto``: on CUDA bf16 where supported,
    else fp16; on CPU bf16 only where the CPU has native bf16 instructions (AVX512-BF16 /
    AMX, and not capped below them by ``ONEDNN_MAX_CPU_ISA``; measured faster there at equal
    accuracy, and several times slower where emulated).
    ``schedule`` is ``cosine`` (per step, to zero) or ``constant``. ``max_train_samples``
    caps the training set (its first samples; the split is already shuffled), ``max_val_samples`` the validation
    set scored (the same samples for every evaluation; on a large split the scoring can take longer than a
    capped training). ``flops``: one
    forward pass at batch size 1 (torch's ``FlopCounterMode``). ``latency: true`` also reports
    ``latency_ms``: the median of ``latency_repeats`` timed forward passes of a
    ``latency_batch_size`` batch on the evaluation device, after ``latency_warmup`` untimed ones.

    Parameters:
        epochs: passes over the training split per evaluation (the learning-rate schedule spans them all).
        device: ``auto`` (CUDA when there is a GPU, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``.
        channels_last: train image networks in the channels_last memory format (faster convolutions on CPU and
            GPU); off in safe mode.
        optimizer: the optimizer for genomes that carry none: ``adam``, ``adamw`` or ``sgd`` (with ``momentum``).
        weight_decay: the weight decay for genomes that carry none.
        batch_size: the training batch size for genomes that carry none.
        momentum: SGD's momentum for genomes that carry none.
        eval_batch_size: the batch size of the validation pass (memory and speed, not what is scored).
        max_train_samples: train on the first N samples of the training split only (null: all of it).
        max_val_samples: score on the first N samples of the validation split only, the same for every
            evaluation (null: all of it); an export scores the whole test split.
        latency_batch_size: with ``latency: true``, the batch size of each timed forward pass.
        latency_repeats: with ``latency: true``, timed forward passes (their median is ``latency_ms``).
        latency_warmup: with ``latency: true``, untimed forward passes before the timed ones.
        class_weight: ``balanced`` weighs each class's training loss by ``n / (C * count)`` (scikit-learn's
            ``class_weight="balanced"``), so a rare class counts as much as a common one; ``none`` (the default)
            weighs every sample alike.
    """

    epochs: int

    metrics: tuple[str, ...] = (
        "val_acc", "val_balanced_acc", "val_loss", "train_loss", "params", "flops", "train_s", "epochs", "train_steps", "train_samples"
    )  # fmt: skip
    optional_metrics = {"latency_ms": "latency: true"}
    metric_ranges = {
        "val_acc": (0.0, 1.0), "val_balanced_acc": (0.0, 1.0), "val_loss": (0.0, math.inf),
        "train_loss": (0.0, math.inf), "train_s": (0.0, math.inf), "latency_ms": (0.0, math.inf),
    }  # fmt: skip
    supports_fidelity = True
    supports_pruning = True
    supports_inheritance = True

    runtime_params = ("device", "threads", "channels_last", "amp", "eval_batch_size", "latency_repeats", "latency_warmup")

    def __init__(
        self,
        *,
        epochs: int = 3,
        device: str = "auto",
        threads: int = 1,
        channels_last: bool = True,
        amp: Amp = "auto",
        lr: float = 0.01,
        optimizer: Optimizer = "adam",
        weight_decay: float = 0.0,
        batch_size: int = 64,
        momentum: float = 0.9,
        schedule: Schedule = "cosine",
        eval_batch_size: int = 1024,
        max_train_samples: int | None = None,
        max_val_samples: int | None = None,
        class_weight: ClassWeight = "none",
        latency: bool = False,
        latency_batch_size: int = 1,
        latency_repeats: int = 30,
        latency_warmup: int = 5,
    ) -> None:
        self.epochs = check_int("epochs", epochs, 1)
        self.device = check_device(device)
        self.threads = check_int("threads", threads, 0)
        self.channels_last = check_bool("channels_last", channels_last)
        self.amp = check_choice("amp", amp, _AMPS)
        self.schedule = check_choice("schedule", schedule, _SCHEDULES)
        self.eval_batch_size = check_int("eval_batch_size", eval_batch_size, 1)
        self.max_train_samples = (
            None if max_train_samples is None else check_int("max_train_samples", max_train_samples, 1)
        )
        self.max_val_samples = None if max_val_samples is None else check_int("max_val_samples", max_val_samples, 1)
        self.class_weight = check_choice("class_weight", class_weight, _CLASS_WEIGHTS)
        self.latency = (check_bool("latency", latency), check_int("latency_batch_size", latency_batch_size, 1),
                        check_int("latency_repeats", latency_repeats, 1),
                        check_int("latency_warmup", latency_warmup, 0))  # fmt: skip
        if latency:
            self.metrics = (*type(self).metrics, "latency_ms")
        self.defaults = _check_hparams(
            dict(lr=lr, optimizer=optimizer, weight_decay=weight_decay, batch_size=batch_size, momentum=momentum), ""
        )
        self.params: dict[str, Any] = dict(
            epochs=self.epochs, device=device, threads=self.threads, channels_last=channels_last, amp=amp,
            lr=lr, optimizer=optimizer, weight_decay=weight_decay, batch_size=batch_size, momentum=momentum,
            schedule=schedule, eval_batch_size=self.eval_batch_size, max_train_samples=self.max_train_samples,
            max_val_samples=self.max_val_samples, class_weight=self.class_weight, latency=latency, latency_batch_size=latency_batch_size,
            latency_repeats=latency_repeats,
            latency_warmup=latency_warmup,
        )  # fmt: skip
        self._runtime: tuple[torch.device, torch.dtype | None] | None = None

    def settings(self) -> dict[str, Any]:
        """Every parameter (the evaluation cache's key); ``class_weight`` and ``max_val_samples`` only when set, so
        results cached before they existed keep their key."""
        out = super().settings()
        if out.get("class_weight") == "none":
            del out["class_weight"]
        if out.get("max_val_samples") is None:
            out.pop("max_val_samples", None)
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_runtime"] = None  # resolved again in the process that evaluates
        return state

    # -- evaluation -----------------------------------------------------------
    def evaluate(
        self, genome: Genome, *, space: SearchSpace, dataset: Dataset | None, seed: int, fidelity: float | None = None,
        reporter: Reporter | None = None, init_state: Mapping[str, torch.Tensor] | None = None,
        keep_state: Callable[[dict[str, torch.Tensor]], None] | None = None,
    ) -> dict[str, float]:
        """Train ``genome``'s network on ``dataset``'s train split; metrics on its validation split.

        ``fidelity`` (multi-fidelity strategies, inherited weights): train for that share of the ``epochs`` x
        steps per epoch (at least one step), with the learning-rate schedule over the shortened training.
        ``reporter`` (a pruner): the validation metrics at each of its points of the training, and
        :class:`~evonas.pruners.TrialPruned` when it says to stop. ``init_state``: start from these weights
        wherever a tensor's name and shape match the network's (``inherited_tensors`` counts them);
        ``keep_state``: called with the trained network's ``state_dict`` (on the host).
        ``train_steps`` and ``train_samples`` count the optimizer steps taken and the samples they saw.
        """
        if fidelity is not None and not (isinstance(fidelity, (int, float)) and 0 < fidelity <= 1):
            raise ValueError(f"fidelity must be a number in (0, 1], got {fidelity!r}")
        if dataset is None:
            raise ValueError("the 'train' fitness needs a dataset")
        reason = space.check_input(dataset.input_shape)
        if reason:
            raise ValueError(reason)
        hp = dict(self.defaults)
        hp.update(self.check_hparams(space.hparams(genome)))
        hooks = _Hooks(reporter, init_state, keep_state)
        return self._train(genome, space, dataset, int(seed), hp, fidelity, hooks=hooks)[1]

    def check_hparams(self, hp: dict[str, Any]) -> dict[str, Any]:
        """``hp`` (a genome's training hyperparameters) checked as training takes them; ``ValueError`` names the
        first it cannot train with (the run checks the values a space's choices offer before it starts)."""
        return _check_hparams({k: v for k, v in hp.items() if k in _GENOME_HPARAMS}, "genome ")

    def fit(
        self, genome: Genome, *, space: SearchSpace, dataset: Dataset, seed: int, on_epoch: Callable[[int, float], None] | None = None
    ) -> tuple[torch.nn.Module, dict[str, float]]:
        """Train like :meth:`evaluate` and return the trained network too (in eval mode), e.g. to export it.

        The metrics are measured on ``dataset``'s validation split, so pass a dataset whose ``x_val`` is
        the data to score (``evonas export`` trains on train + validation and scores on the test split).
        ``on_epoch(epoch, train_loss)`` is called after each epoch (for a progress bar).
        """
        hp = dict(self.defaults)
        hp.update(self.check_hparams(space.hparams(genome)))
        model, metrics = self._train(genome, space, dataset, int(seed), hp, None, on_epoch)
        return model, metrics

    def _train(
        self, genome: Genome, space: SearchSpace, dataset: Dataset, seed: int, hp: dict[str, Any], fidelity: float | None,
        on_epoch: Callable[[int, float], None] | None = None, hooks: _Hooks | None = None,
    ) -> tuple[torch.nn.Module, dict[str, float]]:
        device, amp_dtype = self._resolve()  # (full precision in safe mode)
        message = ""
        for attempt in range(2):  # out of memory: one more try with half the batch, then a failed evaluation
            try:
                return self._run(genome, space, dataset, seed, hp, device, amp_dtype, fidelity, on_epoch, hooks)
            except EvaluationError:
                raise
            except RuntimeError as exc:  # torch.OutOfMemoryError included
                if not isinstance(exc, torch.OutOfMemoryError) and "out of memory" not in str(exc).lower():
                    raise
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            # Outside the except block: the traceback (and the tensors its frames hold) is gone.
            free_memory(device)
            if attempt == 0 and int(hp["batch_size"]) >= 2:
                hp["batch_size"] = int(hp["batch_size"]) // 2
            else:
                break
        raise EvaluationError(f"out of memory on {device} (also with batch size {hp['batch_size']}): {message}")

    def runtime(self) -> dict[str, Any]:
        """The device type and, on CPU, the precision ``amp`` resolves to here and the kernels that run
        (:func:`~evonas.fitness.device.cpu_kernels`); on CUDA the worker resolves the precision: it needs the GPU
        initialised, which the main process leaves alone."""
        kind = torch.device(auto_device() if self.device == "auto" else self.device).type
        if kind != "cpu":
            return {"device": kind, "precision": self.amp}
        dtype = amp_dtype(self.amp, torch.device("cpu"))
        return {"device": kind, "precision": "fp32" if dtype is None else str(dtype).replace("torch.", ""),
                "kernels": cpu_kernels()}  # fmt: skip

    def _resolve(self) -> tuple[torch.device, torch.dtype | None]:
        """Device and autocast dtype: resolved once per process (and the thread count set); the dtype is ``None`` (full
        precision) for an evaluation in safe mode only, whichever evaluation the process ran first."""
        if self._runtime is None:
            if self.threads and torch.get_num_threads() != self.threads:
                torch.set_num_threads(self.threads)
            device = torch.device(auto_device() if self.device == "auto" else self.device)
            if device.type == "cuda" and not torch.cuda.is_available():
                raise ValueError(f"device {self.device!r} was asked for but CUDA is not available here")
            self._runtime = (device, amp_dtype(self.amp, device, safe=False))
        device, dtype = self._runtime
        return device, (None if in_safe_mode() else dtype)

    def _run(
        self,
        genome: Genome,
        space: SearchSpace,
        dataset: Dataset,
        seed: int,
        hp: Mapping[str, Any],
        device: torch.device,
        amp_dtype: torch.dtype | None,
        fidelity: float | None = None,
        on_epoch: Callable[[int, float], None] | None = None,
        hooks: _Hooks | None = None,
    ) -> tuple[torch.nn.Module, dict[str, float]]:
        """One training of ``genome``'s network with the hyperparameters ``hp``, then its metrics."""
        hooks = hooks or _Hooks()
        channels_last = self.channels_last and len(dataset.input_shape) == 3 and not in_safe_mode()
        model, flops = _decode(genome, space, dataset, seed, device, channels_last)
        n_params = sum(p.numel() for p in model.parameters())
        inherited = _load_matching(model, hooks.init_state) if hooks.init_state is not None else None
        data = _device_data(dataset, device, channels_last)
        x, y = data.x_train, data.y_train
        if self.max_train_samples is not None:
            x, y = x[: self.max_train_samples], y[: self.max_train_samples]
        x_val, y_val = data.x_val[: self.max_val_samples], data.y_val[: self.max_val_samples]  # None: all of it
        optimizer = _make_optimizer(model, hp, device)
        scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
        autocast = _autocast(device, amp_dtype)
        plan = self._plan(len(y), hp, fidelity)
        cost = {"params": int(n_params), "flops": flops, **({} if inherited is None else {"inherited_tensors": inherited})}

        start_time = time.perf_counter()
        checkpoint = None
        if hooks.reporter is not None and hooks.reporter.points:
            reporter = hooks.reporter
            at = {max(1, round(p * plan.total)): p for p in reporter.points if round(p * plan.total) < plan.total}

            def checkpoint(step: int, samples: int, train_loss: Callable[[], float]) -> None:
                if step not in at:
                    return
                val_loss, val_acc, balanced = _score(model, x_val, y_val, self.eval_batch_size, autocast)
                model.train()
                reporter.report({
                    "val_acc": val_acc, "val_balanced_acc": balanced, "val_loss": val_loss, "train_loss": train_loss(), **cost,
                    "train_s": time.perf_counter() - start_time, "epochs": step / len(plan.starts),
                    "train_steps": step, "train_samples": samples,
                }, at[step])  # fmt: skip
                if reporter.should_prune():
                    raise TrialPruned()

        weight = balanced_class_weights(y, dataset.num_classes) if self.class_weight == "balanced" else None
        train_loss, steps, samples = _train_epochs(model, optimizer, scaler, autocast, x, y, plan, seed, on_epoch, hp,
                                                   checkpoint, weight)  # fmt: skip
        train_s = time.perf_counter() - start_time

        val_loss, val_acc, balanced = _score(model, x_val, y_val, self.eval_batch_size, autocast)
        if not math.isfinite(val_loss):
            raise EvaluationError("non-finite loss on the validation split")
        extra: dict[str, float] = {}
        if self.latency[0]:
            _, batch, repeats, warmup = self.latency
            extra["latency_ms"] = measure_latency_ms(
                model, tuple(dataset.input_shape), batch_size=batch, device=device, repeats=repeats, warmup=warmup,
                channels_last=channels_last, autocast=autocast,
            )  # fmt: skip
        if hooks.keep_state is not None:
            hooks.keep_state({k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()})
        return model, {
            "val_acc": val_acc,
            "val_balanced_acc": balanced,
            "val_loss": val_loss,
            "train_loss": train_loss,
            **cost,
            "train_s": train_s,
            "epochs": self.epochs if fidelity is None else plan.total / len(plan.starts),
            "train_steps": steps,
            "train_samples": samples,
            **extra,
        }

    def _plan(self, n: int, hp: Mapping[str, Any], fidelity: float | None) -> _Plan:
        """The batches and steps of one training on ``n`` samples: ``epochs`` passes, or the share ``fidelity``."""
        batch_size = min(int(hp["batch_size"]), n)
        # A last batch of a single sample is dropped: BatchNorm cannot train on it.
        starts = [s for s in range(0, n, batch_size) if min(batch_size, n - s) >= 2 or s == 0]
        total = self.epochs * len(starts)
        if fidelity is not None:
            total = max(1, round(fidelity * total))
        lr = float(hp["lr"])
        cosine = self.schedule == "cosine"  # else constant: the optimizer keeps its initial lr
        lrs = [lr * 0.5 * (1.0 + math.cos(math.pi * t / total)) for t in range(total)] if cosine else []
        return _Plan(
            n=n, batch_size=batch_size, starts=starts, counts=[min(batch_size, n - s) for s in starts],
            total=total, n_epochs=-(-total // len(starts)), lrs=lrs,
        )  # fmt: skip


class _Hooks(NamedTuple):
    """What one evaluation reports to and starts from (pruning, inherited weights); all optional."""

    reporter: Reporter | None = None
    init_state: Mapping[str, torch.Tensor] | None = None
    keep_state: Callable[[dict[str, torch.Tensor]], None] | None = None


def _load_matching(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> int:
    """Copy ``state`` (a parent's trained tensors) into ``model`` wherever a layer is unchanged in shape; the number
    of tensors copied. The rest keep their fresh initialisation.

    Tensors are matched in order, by their role (the name with layer numbers left out: ``features.#.conv.weight``)
    and shape, each match after the previous one: so a layer keeps its weights when a mutation adds or removes a
    layer before it and its number changes. Parameters and buffers alike (BatchNorm's running statistics too)."""
    parent = [(_role(n), v) for n, v in state.items() if isinstance(v, torch.Tensor)]
    copied, pos = 0, 0
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            role = _role(name)
            for j in range(pos, len(parent)):
                src_role, src = parent[j]
                if src_role == role and src.shape == tensor.shape and src.dtype == tensor.dtype:
                    tensor.copy_(src.to(tensor.device))
                    copied, pos = copied + 1, j + 1
                    break
    return copied


def _role(name: str) -> str:
    """A tensor's name without its layer numbers (``features.3.conv.weight`` -> ``features.#.conv.weight``)."""
    return ".".join("#" if part.isdigit() else part for part in name.split("."))


class _Plan(NamedTuple):
    """The batches and steps of one training."""

    #: training samples
    n: int
    batch_size: int
    #: where each batch of an epoch starts in the epoch's permutation
    starts: list[int]
    #: the samples in each batch of an epoch
    counts: list[int]
    #: optimizer steps in all (fewer than epochs x batches when the fidelity is below 1)
    total: int
    #: epochs begun (the last one may end early)
    n_epochs: int
    #: the learning rate of each step (cosine); empty: the optimizer's own, constant
    lrs: list[float]


# -- helpers ----------------------------------------------------------------------
def _decode(
    genome: Genome, space: SearchSpace, dataset: Dataset, seed: int, device: torch.device, channels_last: bool
) -> tuple[torch.nn.Module, float]:
    """``genome``'s network initialised with ``seed``, on ``device``, and its FLOPs (counted on the host)."""
    torch.manual_seed(seed)
    model = space.decode(genome, input_shape=dataset.input_shape, num_classes=dataset.num_classes)
    flops = count_flops(model, tuple(dataset.input_shape))  # on the host, before training: no RNG drawn
    if channels_last:
        return model.to(device, memory_format=torch.channels_last), flops
    return model.to(device), flops


def _autocast(device: torch.device, amp_dtype: torch.dtype | None) -> Callable[[], ContextManager[Any]]:
    """A maker of the mixed-precision context of ``amp_dtype`` on ``device`` (none: full precision)."""

    def autocast() -> ContextManager[Any]:
        if amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=amp_dtype)

    return autocast


def balanced_class_weights(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``n / (C * count)`` per class over the classes present in ``y`` (scikit-learn's ``class_weight="balanced"``);
    0 for a class absent from it."""
    counts = torch.bincount(y, minlength=num_classes).float()
    present = int((counts > 0).sum())
    return torch.where(counts > 0, len(y) / (present * counts.clamp(min=1)), torch.zeros_like(counts))


def _train_epochs(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    autocast: Callable[[], ContextManager[Any]],
    x: torch.Tensor,
    y: torch.Tensor,
    plan: _Plan,
    seed: int,
    on_epoch: Callable[[int, float], None] | None,
    hp: Mapping[str, Any],
    checkpoint: Callable[[int, int, Callable[[], float]], None] | None = None,
    class_weight: torch.Tensor | None = None,
) -> tuple[float, int, int]:
    """Train ``model`` on ``(x, y)`` as ``plan`` says, batches drawn with ``seed``; the last epoch's mean loss, the
    optimizer steps taken and the samples they saw. ``checkpoint(step, samples, loss)`` after each step (a
    pruner's reports; ``loss()`` gives the epoch's mean loss so far; it may raise
    :class:`~evonas.pruners.TrialPruned`).

    Per-batch losses are kept on the device and summed once per epoch, weighted by batch size: the one
    synchronisation per epoch (and one per report), where a non-finite loss raises :class:`EvaluationError`.
    """
    device = y.device
    generator = torch.Generator().manual_seed(seed)
    weights = torch.tensor(plan.counts, dtype=torch.float32, device=device)
    groups = optimizer.param_groups
    model.train()
    step = 0
    loss_sum = torch.zeros((), device=device)
    seen = sum(plan.counts)
    samples = 0

    def loss_sum_of(losses: list[torch.Tensor]) -> torch.Tensor:  # the batch losses weighted by batch size
        return torch.dot(torch.stack(losses).float(), weights[: len(losses)])

    for epoch in range(plan.n_epochs):
        perm = torch.randperm(plan.n, generator=generator).to(device, non_blocking=True)
        losses = []
        for s in plan.starts:
            if step >= plan.total:  # a shortened training (fidelity < 1) ends within its last epoch
                break
            idx = perm[s : s + plan.batch_size]
            xb, yb = x[idx], y[idx]
            if plan.lrs:
                for group in groups:
                    group["lr"] = plan.lrs[step]
            step += 1
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                loss = F.cross_entropy(model(xb), yb, weight=class_weight)
            if scaler is None:
                loss.backward()
                optimizer.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            losses.append(loss.detach())
            samples += plan.counts[len(losses) - 1]
            if checkpoint is not None:  # the loss so far is synchronised only where the checkpoint reports
                checkpoint(step, samples, lambda: loss_sum_of(losses).item() / sum(plan.counts[: len(losses)]))
        loss_sum = loss_sum_of(losses)
        seen = sum(plan.counts[: len(losses)])
        if not bool(torch.isfinite(loss_sum)):  # the one sync per epoch
            raise EvaluationError(
                f"non-finite loss in training epoch {epoch + 1} (lr={float(hp['lr']):g}, {hp['optimizer']})"
            )
        if on_epoch is not None:
            on_epoch(epoch + 1, loss_sum.item() / seen)
    return loss_sum.item() / seen, step, samples
def _score(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    autocast: Callable[[], ContextManager[Any]],
) -> tuple[float, float, float]:
    """Mean cross-entropy, accuracy and balanced accuracy (the mean of the per-class recalls over the classes
    present in ``y``, as scikit-learn's ``balanced_accuracy_score``) of ``model`` on ``(x, y)``, in eval mode."""
    model.eval()
    n = len(y)
    if n == 0:
        raise ValueError("the dataset's validation split is empty")
    with torch.inference_mode():
        loss_sum = torch.zeros((), device=y.device)
        totals = torch.bincount(y)  # samples per class (a hit's class is always one of y's)
        hits = torch.zeros_like(totals)
        for s in range(0, n, batch_size):
            yb = y[s : s + batch_size]
            with autocast():
                out = model(x[s : s + batch_size])
            loss_sum += F.cross_entropy(out.float(), yb, reduction="sum")
            hits += torch.bincount(yb[out.argmax(1) == yb], minlength=len(totals))
        present = totals > 0
        recall = (hits[present].double() / totals[present].double()).mean()
        loss, correct, balanced = torch.stack([loss_sum.double(), hits.sum().double(), recall]).tolist()
    return loss / n, correct / n, balanced


def _device_data(dataset: Dataset, device: torch.device, channels_last: bool) -> _DeviceData:
    """``dataset``'s train and val arrays as tensors on ``device``, made once per process."""
    per_dataset = _DEVICE_DATA.setdefault(dataset, {})
    key = (str(device), channels_last)
    if key not in per_dataset:

        def tensor(a: np.ndarray, dtype: type) -> torch.Tensor:
            return torch.from_numpy(np.require(a, dtype=dtype, requirements=["C", "W"])).to(device)

        xt, xv = tensor(dataset.x_train, np.float32), tensor(dataset.x_val, np.float32)
        if channels_last:
            xt, xv = xt.contiguous(memory_format=torch.channels_last), xv.contiguous(memory_format=torch.channels_last)
        per_dataset[key] = _DeviceData(xt, tensor(dataset.y_train, np.int64), xv, tensor(dataset.y_val, np.int64))
    return per_dataset[key]


def _make_optimizer(model: torch.nn.Module, hp: Mapping[str, Any], device: torch.device) -> torch.optim.Optimizer:
    """The genome's optimizer, fused where the device supports it (measured faster on CPU too)."""
    params = [p for p in model.parameters() if p.requires_grad]
    lr, wd = float(hp["lr"]), float(hp["weight_decay"])
    if hp["optimizer"] == "sgd":
        cls: Any = torch.optim.SGD
        kwargs: dict[str, Any] = dict(lr=lr, momentum=float(hp["momentum"]), weight_decay=wd)
    else:
        cls = torch.optim.Adam if hp["optimizer"] == "adam" else torch.optim.AdamW
        kwargs = dict(lr=lr, weight_decay=wd)
    try:
        return cls(params, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel for this device / torch version
        return cls(params, **kwargs)


def _check_hparams(hp: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Validated training hyperparameters (``prefix`` says whose, in error messages)."""
    out = dict(hp)
    if "lr" in out:
        out["lr"] = check_number(f"{prefix}lr", out["lr"], above=0)
    if "weight_decay" in out:
        out["weight_decay"] = check_number(f"{prefix}weight_decay", out["weight_decay"], minimum=0)
    if "momentum" in out:
        out["momentum"] = check_number(f"{prefix}momentum", out["momentum"], minimum=0, below=1)
    if "batch_size" in out:
        out["batch_size"] = check_int(f"{prefix}batch_size", out["batch_size"], 1)
    if "optimizer" in out:
        out["optimizer"] = check_choice(f"{prefix}optimizer", out["optimizer"], _OPTIMIZERS)
    return out
