"""The ``train`` fitness: learns, deterministic, fails cleanly, never reads the test split."""

from __future__ import annotations

import dataclasses
import gc
import math
import pickle
import random
from typing import Any, Mapping

import numpy as np
import pytest
import torch
from torch import nn

from evonas.datasets import Dataset, load_dataset
from evonas.fitness import FITNESSES, EvaluationError
from evonas.fitness import device as device_mod
from evonas.fitness import train as train_mod
from evonas.fitness.train import TrainFitness
from evonas.spaces.base import Genome, SearchSpace


@dataclasses.dataclass(frozen=True)
class StubGenome(Genome):
    width: int = 8
    nan: bool = False
    oom: bool = False
    oom_above: int | None = None  # out of memory on training batches larger than this
    lr: float | None = None
    optimizer: str | None = None
    batch_size: int | None = None


class _NanNet(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) * float("nan")


class _OomNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


class _OomAboveNet(nn.Module):
    """Runs out of memory on training batches larger than ``limit`` (evaluation batches are exempt)."""

    def __init__(self, inner: nn.Module, limit: int) -> None:
        super().__init__()
        self.inner, self.limit = inner, limit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.inner(x)


class StubSpace(SearchSpace):
    """Decodes to a small fixed CNN (images) or MLP (vectors); hparams from the genome's set fields."""

    name = "stub"
    input_ranks = (1, 3)

    def sample(self, *, rng: random.Random) -> StubGenome:
        return StubGenome()

    def validate(self, genome: Genome) -> None:
        pass

    def from_dict(self, data: Mapping[str, Any]) -> StubGenome:
        return StubGenome(**data)

    def hparams(self, genome: StubGenome) -> dict[str, Any]:  # type: ignore[override]
        return {k: v for k in ("lr", "optimizer", "batch_size") if (v := getattr(genome, k)) is not None}

    def decode(self, genome: StubGenome, *, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:  # type: ignore[override]
        if genome.oom:
            return _OomNet()
        w = genome.width
        if len(input_shape) == 3:
            net: nn.Module = nn.Sequential(
                nn.Conv2d(input_shape[0], w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
                nn.Conv2d(w, 2 * w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(2 * w), nn.ReLU(),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * w, num_classes),
            )  # fmt: skip
        else:
            net = nn.Sequential(nn.Linear(input_shape[0], 4 * w), nn.ReLU(), nn.Linear(4 * w, num_classes))
        if genome.oom_above is not None:
            return _OomAboveNet(net, genome.oom_above)
        return _NanNet(net) if genome.nan else net


SPACE = StubSpace()


@pytest.fixture(scope="module")
def images() -> Dataset:
    return load_dataset("synthetic", seed=0, n_samples=400, num_classes=4, shape=[1, 8, 8], noise=0.5)


@pytest.fixture(scope="module")
def vectors() -> Dataset:
    return load_dataset("synthetic", seed=0, n_samples=400, num_classes=4, shape=[16], noise=0.5)


def _eval(dataset: Dataset, genome: StubGenome | None = None, seed: int = 0, **params: Any) -> dict[str, float]:
    return TrainFitness(**params).evaluate(genome or StubGenome(), space=SPACE, dataset=dataset, seed=seed)


def test_registered_and_settings() -> None:
    assert FITNESSES.get("train") is TrainFitness
    f = TrainFitness(epochs=2, lr=0.1)
    s = f.settings()
    assert s["epochs"] == 2 and s["lr"] == 0.1 and s["optimizer"] == "adam" and s["batch_size"] == 64
    assert set(s) >= {"device", "threads", "channels_last", "amp", "schedule", "eval_batch_size", "max_train_samples"}


def test_metrics_keys_and_types(images: Dataset) -> None:
    m = _eval(images, epochs=2)
    assert set(m) == {"val_acc", "val_balanced_acc", "val_loss", "train_loss", "params", "flops", "train_s", "epochs", "train_steps", "train_samples"}
    assert isinstance(m["val_acc"], float) and 0.0 <= m["val_acc"] <= 1.0
    assert isinstance(m["val_loss"], float) and math.isfinite(m["val_loss"])
    assert isinstance(m["train_loss"], float) and math.isfinite(m["train_loss"])
    assert isinstance(m["params"], int) and m["params"] == sum(
        p.numel() for p in SPACE.decode(StubGenome(), input_shape=(1, 8, 8), num_classes=4).parameters()
    )
    assert isinstance(m["train_s"], float) and m["train_s"] > 0
    assert m["epochs"] == 2
    # 240 training samples in batches of 64 (the last of 48): 4 steps an epoch
    assert m["train_steps"] == 8 and m["train_samples"] == 480


def test_learns_images(images: Dataset) -> None:
    assert _eval(images, epochs=5)["val_acc"] >= 0.9


def test_learns_vectors(vectors: Dataset) -> None:
    m = _eval(vectors, epochs=5)
    assert m["val_acc"] >= 0.9
    assert m["train_loss"] < math.log(4)


def test_digits_quickly() -> None:
    m = _eval(load_dataset("digits", seed=0), StubGenome(width=16), epochs=3)
    assert m["val_acc"] > 0.7


def test_deterministic_for_a_seed(images: Dataset) -> None:
    a, b = _eval(images, seed=3, epochs=2), _eval(images, seed=3, epochs=2)
    a.pop("train_s"), b.pop("train_s")
    assert a == b
    c = _eval(images, seed=4, epochs=2)
    assert (c["val_loss"], c["train_loss"]) != (a["val_loss"], a["train_loss"])


@pytest.mark.parametrize(
    "params",
    [
        {"optimizer": "sgd", "lr": 0.05},
        {"optimizer": "adamw", "weight_decay": 0.01},
        {"schedule": "constant"},
        {"channels_last": False},
        {"amp": "bf16"},
        {"amp": "fp16"},
        {"batch_size": 1000, "eval_batch_size": 7},
        {"max_train_samples": 33, "batch_size": 16},
    ],
)
def test_settings_variants_run(images: Dataset, params: dict) -> None:
    m = _eval(images, epochs=1, **params)
    assert 0.0 <= m["val_acc"] <= 1.0 and math.isfinite(m["val_loss"])


def test_max_val_samples_scores_the_first_samples_of_the_validation_split(images: Dataset) -> None:
    """The cap scores what a validation split of those samples would, and leaves the cache's key of a fitness
    without it as it was."""
    import dataclasses

    capped = _eval(images, epochs=1, max_val_samples=30)
    short = dataclasses.replace(images, x_val=images.x_val[:30], y_val=images.y_val[:30])
    whole = _eval(short, epochs=1)
    for k in ("val_acc", "val_balanced_acc", "val_loss", "train_loss"):
        assert capped[k] == pytest.approx(whole[k], abs=1e-6), k
    assert len(images.y_val) > 30 and _eval(images, epochs=1)["val_loss"] != pytest.approx(capped["val_loss"])
    assert "max_val_samples" not in TrainFitness().settings()  # results cached before the cap keep their key
    assert TrainFitness(max_val_samples=30).settings()["max_val_samples"] == 30


def test_genome_hparams_win(images: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict] = []
    real = train_mod._make_optimizer

    def spy(model: nn.Module, hp: Mapping[str, Any], device: torch.device) -> torch.optim.Optimizer:
        seen.append(dict(hp))
        return real(model, hp, device)

    monkeypatch.setattr(train_mod, "_make_optimizer", spy)
    _eval(images, StubGenome(lr=0.003, optimizer="sgd", batch_size=32), epochs=1, lr=0.5, weight_decay=0.001)
    assert seen[-1]["lr"] == 0.003 and seen[-1]["optimizer"] == "sgd" and seen[-1]["batch_size"] == 32
    assert seen[-1]["weight_decay"] == 0.001  # not in the genome: the fitness default
    _eval(images, StubGenome(), epochs=1, lr=0.5)
    assert seen[-1]["lr"] == 0.5 and seen[-1]["optimizer"] == "adam"


def test_nan_loss_raises(images: Dataset) -> None:
    with pytest.raises(EvaluationError, match="non-finite loss"):
        _eval(images, StubGenome(nan=True), epochs=1)


def test_exploding_lr_raises(vectors: Dataset) -> None:
    with pytest.raises(EvaluationError, match="non-finite loss"):
        _eval(vectors, StubGenome(lr=1e30, optimizer="sgd"), epochs=2)


def test_out_of_memory_raises(images: Dataset) -> None:
    with pytest.raises(EvaluationError, match="out of memory"):
        _eval(images, StubGenome(oom=True), epochs=1)


def test_out_of_memory_retries_once_with_half_the_batch(images: Dataset) -> None:
    metrics = _eval(images, StubGenome(oom_above=32, batch_size=64), epochs=1)
    assert 0 <= metrics["val_acc"] <= 1
    with pytest.raises(EvaluationError, match="also with batch size 32"):
        _eval(images, StubGenome(oom_above=16, batch_size=64), epochs=1)


def test_never_reads_the_test_split(images: Dataset) -> None:
    poisoned = dataclasses.replace(
        images,
        x_test=np.full_like(images.x_test, np.nan),
        y_test=np.full_like(images.y_test, 10**6),
    )
    clean = _eval(images, seed=1, epochs=2)
    dirty = _eval(poisoned, seed=1, epochs=2)
    clean.pop("train_s"), dirty.pop("train_s")
    assert dirty == clean
    cached = train_mod._DEVICE_DATA[poisoned][("cpu", True)]
    assert len(cached) == 4 and all(bool(torch.isfinite(t.float()).all()) for t in cached)  # train + val only


def test_device_tensors_cached_per_dataset() -> None:
    ds = load_dataset("synthetic", seed=9, n_samples=80, num_classes=2, shape=[1, 4, 4])
    _eval(ds, epochs=1)
    first = train_mod._DEVICE_DATA[ds][("cpu", True)]
    _eval(ds, epochs=1, seed=2)
    assert train_mod._DEVICE_DATA[ds][("cpu", True)] is first
    _eval(ds, epochs=1, channels_last=False)
    assert set(train_mod._DEVICE_DATA[ds]) == {("cpu", True), ("cpu", False)}
    n = len(train_mod._DEVICE_DATA)
    del ds, first
    gc.collect()
    assert len(train_mod._DEVICE_DATA) == n - 1  # dropped with its dataset


def test_space_that_rejects_the_input(images: Dataset) -> None:
    class VectorsOnly(StubSpace):
        input_ranks = (1,)

    with pytest.raises(ValueError, match="expects"):
        TrainFitness().evaluate(StubGenome(), space=VectorsOnly(), dataset=images, seed=0)
    with pytest.raises(ValueError, match="dataset"):
        TrainFitness().evaluate(StubGenome(), space=SPACE, dataset=None, seed=0)


@pytest.mark.parametrize(
    "params, name",
    [
        ({"epochs": 0}, "epochs"),
        ({"device": "gpu-please"}, "device"),
        ({"threads": -1}, "threads"),
        ({"channels_last": "yes"}, "channels_last"),
        ({"amp": "fp8"}, "amp"),
        ({"lr": 0.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"batch_size": 0}, "batch_size"),
        ({"momentum": 1.5}, "momentum"),
        ({"schedule": "step"}, "schedule"),
        ({"eval_batch_size": 0}, "eval_batch_size"),
        ({"max_train_samples": 0}, "max_train_samples"),
        ({"max_val_samples": 0}, "max_val_samples"),
    ],
)
def test_bad_params(params: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        TrainFitness(**params)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_unavailable(images: Dataset) -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        _eval(images, device="cuda")


def test_bad_genome_hparams(images: Dataset) -> None:
    with pytest.raises(ValueError, match="genome optimizer"):
        _eval(images, StubGenome(optimizer="rmsprop"), epochs=1)


def test_amp_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    assert device_mod.amp_dtype("off", cpu) is None
    assert device_mod.amp_dtype("bf16", cpu) is torch.bfloat16
    assert device_mod.amp_dtype("fp16", cpu) is torch.float16
    monkeypatch.setattr(device_mod, "cpu_has_native_bf16", lambda: False)
    assert device_mod.amp_dtype("auto", cpu) is None
    monkeypatch.setattr(device_mod, "cpu_has_native_bf16", lambda: True)
    assert device_mod.amp_dtype("auto", cpu) is torch.bfloat16


def test_native_bf16_follows_a_capped_instruction_set(monkeypatch: pytest.MonkeyPatch) -> None:
    # A CPU with bf16 instructions: capping oneDNN (or torch's kernels) below them makes bf16 emulated, so "no".
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY"):
        monkeypatch.delenv(name, raising=False)
    assert device_mod.cpu_has_native_bf16()
    for value, native in [("AVX2", False), ("avx512_core", False), ("AVX512_CORE_BF16", True), ("ALL", True)]:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", value)
        assert device_mod.cpu_has_native_bf16() is native, value
        assert (device_mod.amp_dtype("auto", torch.device("cpu")) is torch.bfloat16) is native, value
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "AVX2")
    assert not device_mod.cpu_has_native_bf16()
    monkeypatch.delenv("DNNL_MAX_CPU_ISA")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")  # ATEN_CPU_CAPABILITY=avx2
    assert not device_mod.cpu_has_native_bf16()
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert not device_mod.cpu_has_native_bf16()  # AVX-512 without its bf16 instructions


def test_threads_and_pickling(images: Dataset) -> None:
    before = torch.get_num_threads()
    try:
        f = TrainFitness(epochs=1, threads=1)
        f.evaluate(StubGenome(), space=SPACE, dataset=images, seed=0)
        assert torch.get_num_threads() == 1
        g = pickle.loads(pickle.dumps(f))
        assert g.settings() == f.settings() and g._runtime is None
        assert 0.0 <= g.evaluate(StubGenome(), space=SPACE, dataset=images, seed=0)["val_acc"] <= 1.0
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("amp", ["auto", "bf16"])
def test_a_safe_mode_evaluation_first_leaves_the_later_ones_in_their_precision(amp: str) -> None:
    """A worker that replaces a dead one runs the safe-mode retry first: its later evaluations must not stay in
    fp32 (they are journalled as normal evaluations, and cached under the run's precision)."""
    from evonas.fitness.device import safe_mode
    from evonas.fitness.train import TrainFitness

    fresh = TrainFitness(amp=amp)._resolve()
    fitness = TrainFitness(amp=amp)
    with safe_mode():
        assert fitness._resolve()[1] is None
    assert fitness._resolve() == fresh
    with safe_mode():  # and back again
        assert fitness._resolve()[1] is None
    assert TrainFitness(amp=amp)._resolve()[1] == (torch.bfloat16 if amp == "bf16" else fresh[1])


def test_balanced_class_weights_are_scikit_learn_s() -> None:
    from sklearn.utils.class_weight import compute_class_weight

    y = np.array([0] * 50 + [1] * 7 + [3] * 3)
    got = train_mod.balanced_class_weights(torch.from_numpy(y), 5).numpy()
    np.testing.assert_allclose(got[[0, 1, 3]], compute_class_weight("balanced", classes=np.array([0, 1, 3]), y=y), rtol=1e-6)
    assert got[2] == got[4] == 0  # absent from training: weighs nothing
    assert "class_weight" not in TrainFitness().settings()  # the default leaves the evaluation cache's keys as they were
    assert TrainFitness(class_weight="balanced").settings()["class_weight"] == "balanced"


def test_class_weight_balanced_lifts_the_rare_classes(vectors: Dataset) -> None:
    """Training on a split where class 0 is 19 of every 20 samples: unweighted, the network mostly answers class 0;
    balanced weights raise the balanced accuracy on the (balanced) validation split."""
    keep = np.flatnonzero((vectors.y_train == 0) | (np.arange(len(vectors.y_train)) % 20 == 0))
    skewed = dataclasses.replace(vectors, x_train=vectors.x_train[keep], y_train=vectors.y_train[keep])
    assert np.bincount(skewed.y_train)[0] > 5 * np.bincount(skewed.y_train)[1:].max()
    plain = _eval(skewed, epochs=3, amp="off")
    weighted = _eval(skewed, epochs=3, amp="off", class_weight="balanced")
    assert weighted["val_balanced_acc"] > plain["val_balanced_acc"] + 0.1, (plain, weighted)
