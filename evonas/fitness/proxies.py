"""``zero_cost``: training-free architecture scores ("zero-cost proxies") of the real decoded network.

Each score needs one or two forward/backward passes of the freshly initialised network
(``space.decode`` under ``torch.manual_seed(seed)``) on one mini-batch of the run's train split
(``batch_size`` samples drawn with ``seed``), so it costs a small fraction of a training run.
Every proxy works on its own copy of the same initialised network, so a proxy's value does not
depend on which other proxies are asked for. Dropout is switched off throughout.

* ``jacov`` -- NASWOT, Mellor et al. 2021, "Neural Architecture Search without Training" (ICML,
  v2 of arXiv:2006.04647): each input of the batch gets a binary code, one bit per activation
  unit (1 where the unit is active); ``K[i, j]`` counts the units on which inputs ``i`` and ``j``
  agree (``N_A`` minus their Hamming distance) and the score is ``log|det K|``. The reference
  hooks ``nn.ReLU`` and reads the sign of its input; here a forward *pre*-hook reads the sign of
  the pre-activation of every activation module (ReLU, GELU, SiLU, Tanh, ELU, LeakyReLU, ...), so
  the ``chain`` space's SiLU / GELU layers count too and in-place activations are read before they
  overwrite their input. For ReLU networks this is exactly the reference's code. Activations
  called as functions (``F.relu``) are not seen. BatchNorm uses batch statistics (train mode),
  as in the reference. One deviation: the score is ``log det(K + I)``. ``K`` is singular (the
  reference gives ``-inf``) whenever the batch holds more inputs than ``N_A + 1`` (a narrow MLP)
  or two inputs share a code (7 of 200 random quickstart genomes, all one-layer 1x1 convolutions);
  the unit ridge keeps the score finite and low (78-216 there, median of all 384). Where ``K`` is
  regular the ridge adds ``sum(log(1 + 1/lambda_i))``, small against eigenvalues of order ``N_A``
  (checked in the tests; rank correlation with the paper's score 0.9999 on those genomes). The name
  ``jacov`` is kept from the paper's first version (Jacobian covariance), which this score replaced.
* ``synflow`` -- Tanaka et al. 2020, "Pruning neural networks without any data by iteratively
  conserving synaptic flow" (NeurIPS), as a proxy in Abdelfattah et al. 2021, "Zero-Cost Proxies
  for Lightweight NAS" (ICLR): every parameter and buffer replaced by its absolute value, the
  network in float64, ``R = sum(f(1))`` for one all-ones input, and the score is the sum of
  ``|theta * dR/dtheta|`` over the weights of the Conv and Linear layers. The reference builds the
  network without BatchNorm; here BatchNorm is in eval mode with its fresh running statistics
  (mean 0, variance 1, weight 1, bias 0), i.e. the identity up to ``1/sqrt(1 + eps)``.
* ``grad_norm`` and ``snip`` (optional; Abdelfattah et al. 2021; SNIP: Lee et al. 2019, "SNIP:
  Single-shot network pruning based on connection sensitivity", ICLR): from one cross-entropy
  backward pass on the batch (train mode), the sum over Conv/Linear layers of ``||dL/dW||``, and
  the sum of ``|W * dL/dW|``.

Metrics: the asked-for proxies, ``params`` (parameter count) and ``score_s`` (seconds spent).

Experiment-file example (search for high NASWOT score; or list several objectives with ``nsga2``)::

    fitness:
      name: zero_cost
      params: {proxies: [jacov, synflow], batch_size: 64}
    objectives:
      - {metric: jacov, direction: max}

Pre-filter idea (not implemented here): a strategy can score many candidates with ``zero_cost``
and send only the best few to the ``train`` fitness (e.g. rank offspring by ``jacov``, train the
top quarter). ``benchmarks/proxies.py`` measures how well each proxy ranks trained accuracy.
"""

from __future__ import annotations

import copy
import time
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from evonas.checks import check_int
from evonas.datasets.base import Dataset
from evonas.fitness.base import FITNESSES, EvaluationError, FitnessFunction
from evonas.fitness.device import auto_device, check_device
from evonas.spaces.base import Genome, SearchSpace

__all__ = ["ZeroCostFitness", "PROXIES", "naswot_score", "synflow_score", "gradient_scores"]

#: modules whose pre-activation sign gives NASWOT's binary codes
ACTIVATION_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Hardswish, nn.Hardtanh, nn.Tanh, nn.Sigmoid, nn.Softplus,
)  # fmt: skip
#: layers whose weights the synflow / grad_norm / snip sums run over (the reference: Conv2d and Linear)
WEIGHT_LAYERS: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
PROXIES: tuple[str, ...] = ("jacov", "synflow", "grad_norm", "snip")


def _no_dropout(model: nn.Module, train: bool) -> nn.Module:
    model.train(train)
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.eval()
    return model


def naswot_score(model: nn.Module, x: torch.Tensor) -> float:
    """``log det(K + I)`` of the activation-code agreement kernel of ``model`` on batch ``x`` (see the module doc)."""
    n = x.shape[0]
    kernel = torch.zeros(n, n, dtype=torch.float64, device=x.device)

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        signs = (inputs[0].detach().flatten(1) > 0).float().mul_(2).sub_(1)  # +1 active, -1 inactive
        # agreements = (units + signs . signs) / 2; exact in float32 below 2**24 units per module
        kernel.add_((signs @ signs.t()).double().add_(signs.shape[1]).mul_(0.5))

    handles = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, ACTIVATION_MODULES)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    if not handles:
        raise EvaluationError("jacov: the network has no activation modules to read codes from")
    eye = torch.eye(n, dtype=torch.float64, device=x.device)
    return float(torch.linalg.slogdet(kernel + eye).logabsdet.item())


def synflow_score(model: nn.Module, input_shape: Sequence[int], device: torch.device | str = "cpu") -> float:
    """SynFlow of ``model`` (modified in place: |parameters|, float64, eval mode); see the module doc."""
    model = _no_dropout(model.double(), train=False)
    with torch.no_grad():
        for tensor in model.state_dict().values():  # parameters and buffers, sharing storage
            if tensor.is_floating_point():
                tensor.abs_()
    model.zero_grad(set_to_none=True)
    out = model(torch.ones((1, *input_shape), dtype=torch.float64, device=device))
    out.sum().backward()
    total = 0.0
    with torch.no_grad():
        for m in model.modules():
            w = m.weight if isinstance(m, WEIGHT_LAYERS) else None
            if isinstance(w, torch.Tensor) and w.grad is not None:
                total += float((w * w.grad).abs().sum().item())
    return total


def gradient_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """``grad_norm`` and ``snip`` of ``model`` (train mode, no dropout) from one cross-entropy backward on (x, y)."""
    model = _no_dropout(model, train=True)
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    grad_norm = snip = 0.0
    with torch.no_grad():
        for m in model.modules():
            w = m.weight if isinstance(m, WEIGHT_LAYERS) else None
            if isinstance(w, torch.Tensor) and w.grad is not None:
                grad_norm += float(w.grad.norm().item())
                snip += float((w * w.grad).abs().sum().item())
    return {"grad_norm": grad_norm, "snip": snip}


@FITNESSES.register("zero_cost")
class ZeroCostFitness(FitnessFunction):
    """Training-free scores of the decoded network on one seeded train batch (see the module doc).

    ``proxies``: any of ``jacov``, ``synflow``, ``grad_norm``, ``snip`` (default the first two).
    ``batch_size``: inputs in the batch (capped at the train split's size). ``device``: ``auto``
    (CUDA when available) or a torch device string. ``threads`` sets ``torch.set_num_threads``
    (0 leaves it alone), as in the ``train`` fitness.
    """

    metrics = (*PROXIES, "params", "score_s")

    def __init__(
        self, *, proxies: Sequence[str] = ("jacov", "synflow"), batch_size: int = 64, device: str = "auto", threads: int = 1
    ) -> None:
        if isinstance(proxies, str) or not isinstance(proxies, (list, tuple)) or not proxies:
            raise ValueError(f"proxies must be a non-empty list of {', '.join(PROXIES)}; got {proxies!r}")
        unknown = [p for p in proxies if p not in PROXIES]
        if unknown or len(set(proxies)) != len(proxies):
            raise ValueError(f"proxies must be distinct names among {', '.join(PROXIES)}; got {list(proxies)!r}")
        check_int("batch_size", batch_size, 2)
        check_int("threads", threads, 0)
        check_device(device)
        self.proxies = tuple(proxies)
        self.batch_size, self.device, self.threads = batch_size, device, threads
        self.params: dict[str, Any] = dict(proxies=list(proxies), batch_size=batch_size, device=device, threads=threads)

    def evaluate(
        self, genome: Genome, *, space: SearchSpace, dataset: Dataset | None, seed: int
    ) -> dict[str, float]:
        """The asked-for proxies of ``genome``'s network initialised with ``seed``, on a batch drawn with ``seed``."""
        if dataset is None:
            raise ValueError("the 'zero_cost' fitness needs a dataset")
        reason = space.check_input(dataset.input_shape)
        if reason:
            raise ValueError(reason)
        if self.threads and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        device = torch.device(auto_device() if self.device == "auto" else self.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {self.device!r} was asked for but CUDA is not available here")
        seed = int(seed)
        n = len(dataset.y_train)
        if n < 2:
            raise ValueError("the 'zero_cost' fitness needs at least 2 training samples")
        idx = np.sort(np.random.default_rng(seed).choice(n, size=min(self.batch_size, n), replace=False))
        x = torch.from_numpy(np.ascontiguousarray(dataset.x_train[idx], dtype=np.float32)).to(device)
        y = torch.from_numpy(np.asarray(dataset.y_train[idx], dtype=np.int64)).to(device)

        torch.manual_seed(seed)
        model = space.decode(genome, input_shape=dataset.input_shape, num_classes=dataset.num_classes).to(device)
        out: dict[str, float] = {"params": int(sum(p.numel() for p in model.parameters()))}
        start = time.perf_counter()
        runs: dict[str, Callable[[nn.Module], dict[str, float]]] = {
            "jacov": lambda m: {"jacov": naswot_score(_no_dropout(m, train=True), x)},
            "synflow": lambda m: {"synflow": synflow_score(m, dataset.input_shape, device)},
            "grads": lambda m: gradient_scores(m, x, y),
        }
        for run in dict.fromkeys("grads" if p in ("grad_norm", "snip") else p for p in self.proxies):
            torch.manual_seed(seed)
            scores = runs[run](copy.deepcopy(model))
            out.update({k: v for k, v in scores.items() if k in self.proxies})
        out["score_s"] = time.perf_counter() - start
        return out  # a non-finite objective (synflow overflow) is recorded by the engine as a failed evaluation
