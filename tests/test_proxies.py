"""The ``zero_cost`` fitness: finite and deterministic on every space, and checked against hand computations."""

from __future__ import annotations

import copy
import math
import random

import pytest
import torch
from torch import nn

from evonas.config import ConfigError, load_experiment
from evonas.datasets import load_dataset
from evonas.engine.runner import Run
from evonas.fitness import FITNESSES
from evonas.fitness.proxies import PROXIES, ZeroCostFitness, naswot_score, synflow_score
from evonas.spaces import make_space

ALL = list(PROXIES)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


@pytest.fixture(scope="module")
def images():
    return load_dataset("synthetic", seed=0, n_samples=48, shape=[3, 32, 32])


@pytest.mark.parametrize(
    "space_name,params,data",
    [("chain", {}, "digits"), ("mlp", {}, "digits"), ("nb201", {"C": 4, "N": 1}, "images")],
)
def test_every_proxy_is_finite_and_deterministic(space_name, params, data, request) -> None:
    dataset = request.getfixturevalue(data)
    space = make_space(space_name, params)
    fitness = FITNESSES.get("zero_cost")(proxies=ALL, batch_size=32)
    rng = random.Random(0)
    for i in range(3):
        genome = space.sample(rng=rng)
        a = fitness.evaluate(genome, space=space, dataset=dataset, seed=i)
        b = fitness.evaluate(genome, space=space, dataset=dataset, seed=i)
        assert set(a) == {*ALL, "params", "score_s"} and set(a) <= set(fitness.metrics)
        for name in ALL:
            assert isinstance(a[name], float) and math.isfinite(a[name]), (name, a)
            assert a[name] == b[name], name
        assert a["synflow"] > 0 and a["params"] > 0
        # another seed: another batch and initialisation
        assert fitness.evaluate(genome, space=space, dataset=dataset, seed=i + 100)["jacov"] != a["jacov"]
        # a proxy does not depend on which others are asked for
        alone = ZeroCostFitness(proxies=["synflow"], batch_size=32).evaluate(genome, space=space, dataset=dataset, seed=i)
        assert set(alone) == {"synflow", "params", "score_s"} and alone["synflow"] == a["synflow"]


def _chain(width: int, activation: str = "relu"):
    space = make_space("chain")
    layer = dict(kernel=3, width=width, stride=1, activation=activation, batch_norm=True, residual=False)
    data = {"layers": [layer] * 3, "lr": 0.01, "optimizer": "adam", "weight_decay": 0.0, "batch_size": 64}
    return space, space.from_dict(data)


def test_synflow_grows_with_width_at_equal_depth(digits) -> None:
    fitness = ZeroCostFitness(proxies=["synflow"])
    scores = []
    for width in (16, 32, 64):
        space, genome = _chain(width)
        scores.append(fitness.evaluate(genome, space=space, dataset=digits, seed=0)["synflow"])
    assert scores[0] < scores[1] < scores[2], scores


def test_synflow_of_a_linear_chain_is_depth_times_the_flow() -> None:
    """Without biases, |theta|-networks on a positive input are linear and 1-homogeneous per layer, so each
    layer's sum of theta * dR/dtheta is R itself; BatchNorm (eval, fresh statistics) acts as the identity."""
    torch.manual_seed(0)
    for bn in (False, True):
        net = nn.Sequential(nn.Linear(5, 4, bias=False), *([nn.BatchNorm1d(4)] if bn else []), nn.ReLU(),
                            nn.Linear(4, 3, bias=False))  # fmt: skip
        w1, w2 = net[0].weight.detach().double().abs(), net[-1].weight.detach().double().abs()
        flow = float((w2 @ w1 @ torch.ones(5, dtype=torch.float64)).sum())
        expected = 2 * flow / (math.sqrt(1 + 1e-5) if bn else 1.0)
        assert synflow_score(copy.deepcopy(net), (5,)) == pytest.approx(expected, rel=1e-12)


def _reference_naswot(layers: list[nn.Linear], acts: list[nn.Module], x: torch.Tensor) -> tuple[float, float]:
    """log|det K| as in Mellor et al.'s code (codes = pre-activation > 0), computed by hand; and log det(K + I)."""
    k = torch.zeros(len(x), len(x), dtype=torch.float64)
    h = x
    with torch.no_grad():
        for lin, act in zip(layers, acts):
            pre = lin(h)
            c = (pre > 0).double()
            k += c @ c.t() + (1 - c) @ (1 - c).t()
            h = act(pre)
    eye = torch.eye(len(x), dtype=torch.float64)
    return float(torch.linalg.slogdet(k).logabsdet), float(torch.linalg.slogdet(k + eye).logabsdet)


def test_jacov_matches_a_hand_computed_naswot_kernel() -> None:
    torch.manual_seed(0)
    x = torch.randn(16, 8)
    lins = [nn.Linear(8, 300), nn.Linear(300, 200)]
    acts = [nn.ReLU(), nn.SiLU()]
    net = nn.Sequential(lins[0], acts[0], lins[1], acts[1], nn.Linear(200, 3))
    paper, ridge = _reference_naswot(lins, acts, x)
    score = naswot_score(net, x)
    assert score == pytest.approx(ridge, abs=1e-9)
    assert math.isfinite(paper) and 0 < score - paper < 0.005 * paper  # the ridge barely moves a regular kernel
    # SiLU codes come from the sign of its pre-activation: the same codes as a ReLU there
    relu_net = nn.Sequential(lins[0], acts[0], lins[1], nn.ReLU(), nn.Linear(200, 3))
    assert naswot_score(relu_net, x) == score
    # fewer units than inputs: the paper's kernel is singular (-inf); the score stays finite, and low
    narrow = [nn.Linear(8, 4)]
    paper_narrow, ridge_narrow = _reference_naswot(narrow, [nn.ReLU()], x)
    narrow_score = naswot_score(nn.Sequential(narrow[0], nn.ReLU(), nn.Linear(4, 3)), x)
    assert paper_narrow == -math.inf and narrow_score == pytest.approx(ridge_narrow) and 0 < narrow_score < score


def test_jacov_of_identical_inputs_is_the_rank_one_value(digits) -> None:
    """A batch of one image repeated: every pair agrees on all N_A units, K = N_A * ones, log det(K + I) = log(1 + n N_A)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 50), nn.ReLU(), nn.Linear(50, 30), nn.Tanh(), nn.Linear(30, 10))
    x = torch.from_numpy(digits.x_train[:32].copy())
    same = x[:1].repeat(32, 1, 1, 1)
    assert naswot_score(net, same) == pytest.approx(math.log(1 + 32 * 80), rel=1e-12)
    assert naswot_score(net, x) > 5 * math.log(1 + 32 * 80)


def test_parameters_are_checked() -> None:
    for bad in (dict(proxies=[]), dict(proxies=["nope"]), dict(proxies=["jacov", "jacov"]), dict(proxies="jacov"),
                dict(batch_size=1), dict(device="nonsense"), dict(threads=-1)):  # fmt: skip
        with pytest.raises(ValueError):
            ZeroCostFitness(**bad)
    assert ZeroCostFitness().settings() == {"proxies": ["jacov", "synflow"], "batch_size": 64, "device": "auto", "threads": 1}


def test_an_experiment_searches_on_a_proxy(write_experiment, tmp_path) -> None:
    exp = {
        "name": "zc", "seed": 1,
        "space": {"name": "chain", "params": {"max_layers": 3, "batch_norm": [True]}},
        "dataset": {"name": "digits"},
        "fitness": {"name": "zero_cost", "params": {"proxies": ["jacov", "synflow"], "batch_size": 32}},
        "strategy": {"name": "ga", "params": {"population_size": 4, "offspring": 4, "generations": 1}},
        "objectives": [{"metric": "jacov", "direction": "max"}],
        "workers": 0,
    }  # fmt: skip
    summary = Run(load_experiment(write_experiment(exp)), tmp_path / "run", progress=False).execute()
    assert summary.failures == 0 and summary.evaluations >= 4
    assert math.isfinite(summary.best["metrics"]["jacov"]) and summary.best["metrics"]["synflow"] > 0
    with pytest.raises(ConfigError, match="reports"):
        from evonas.engine.build import build

        build(load_experiment(write_experiment({**exp, "objectives": [{"metric": "val_acc"}]}, name="bad")))
