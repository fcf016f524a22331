"""The ``chain`` space: sampling, validation, JSON round trip, decoding and its operators."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
import torch

from evonas.operators import CROSSOVERS, MUTATIONS
from evonas.operators.chain import change_hparam
from evonas.spaces import SPACES, InvalidGenome, make_space
from evonas.spaces.chain import ChainGenome, ChainSpace, ConvLayer
from evonas.spaces.defaults import genomes_dir
from evonas.spaces.hparams import round_lr

N = 200
MUTATION_NAMES = ["chain_add_layer", "chain_remove_layer", "chain_change_layer", "chain_hparam"]


@pytest.fixture(scope="module")
def space() -> ChainSpace:
    return make_space("chain")


@pytest.fixture(scope="module")
def genomes(space: ChainSpace) -> list[ChainGenome]:
    rng = random.Random(1234)
    return [space.sample(rng=rng) for _ in range(N)]


def _layer(**kw: object) -> dict:
    base = dict(kernel=3, width=32, stride=1, activation="relu", batch_norm=True, residual=False)
    base.update(kw)
    return base


def _data(**kw: object) -> dict:
    base = {"layers": [_layer()], "lr": 0.003, "optimizer": "adam", "weight_decay": 0.0, "batch_size": 64}
    base.update(kw)
    return base


def test_registered() -> None:
    assert SPACES.get("chain") is ChainSpace
    assert ChainSpace.input_ranks == (3,)
    for name in MUTATION_NAMES:
        assert MUTATIONS.get(name).spaces == ("chain",)
    assert CROSSOVERS.get("chain_one_point").spaces == ("chain",)


def test_defaults_come_from_yaml(space: ChainSpace) -> None:
    assert ChainSpace().params == space.params
    assert (space.min_layers, space.max_layers) == (1, 6)
    assert space.kernels == (1, 3, 5) and 64 in space.widths
    assert space.hp.lr_low == 1e-4 and space.hp.lr_high == 3e-2


def test_sample_validate_roundtrip_decode(space: ChainSpace, genomes: list[ChainGenome]) -> None:
    torch.manual_seed(0)
    for g in genomes:
        space.validate(g)
        assert space.min_layers <= len(g.layers) <= space.max_layers
        assert sum(layer.stride == 2 for layer in g.layers) <= space.max_downsamples
        assert g.lr == round_lr(g.lr)
        back = space.from_dict(json.loads(json.dumps(space.to_dict(g))))
        assert back == g and space.key(back) == space.key(g)
        for shape in [(1, 8, 8), (3, 32, 32)]:
            net = space.decode(g, input_shape=shape, num_classes=10)
            with torch.no_grad():
                assert net(torch.randn(2, *shape)).shape == (2, 10)


def test_runs_on_tiny_images(space: ChainSpace) -> None:
    layers = tuple(ConvLayer(k, 16, s, "relu", True, True) for k, s in [(5, 2), (1, 2), (3, 1)])
    g = ChainGenome(layers=layers, lr=0.001, optimizer="adam", weight_decay=0.0, batch_size=32)
    space.validate(g)
    for shape in [(1, 1, 1), (3, 2, 5), (2, 7, 3)]:
        net = space.decode(g, input_shape=shape, num_classes=3).eval()
        with torch.no_grad():
            assert net(torch.randn(1, *shape)).shape == (1, 3)


def test_decode_rejects_feature_vectors(space: ChainSpace, genomes: list[ChainGenome]) -> None:
    with pytest.raises(ValueError, match="expects"):
        space.decode(genomes[0], input_shape=(64,), num_classes=10)


def test_same_seed_same_genomes(space: ChainSpace) -> None:
    a = [space.sample(rng=random.Random(7)) for _ in range(3)]
    r1, r2 = random.Random(99), random.Random(99)
    assert [space.sample(rng=r1) for _ in range(20)] == [space.sample(rng=r2) for _ in range(20)]
    assert a[0] == a[1] == a[2]


def test_hparams_and_describe(space: ChainSpace) -> None:
    second = _layer(kernel=5, width=64, stride=2, batch_norm=False, residual=True)
    g = space.from_dict(_data(layers=[_layer(kernel=3, width=32), second], weight_decay=1e-4))
    assert space.hparams(g) == {"lr": 0.003, "optimizer": "adam", "weight_decay": 1e-4, "batch_size": 64}
    assert space.describe(g) == "c3x32b-c5x64s2r | adam lr=0.003 wd=1e-4 bs=64"


def test_saved_genome_is_valid(space: ChainSpace) -> None:
    data = json.loads((genomes_dir() / "saved" / "chain_small.json").read_text())
    assert data["space"] == "chain"
    g = space.from_dict(data["genome"])
    net = space.decode(g, input_shape=(1, 8, 8), num_classes=10)
    assert net(torch.randn(4, 1, 8, 8)).shape == (4, 10)


@pytest.mark.parametrize(
    "data, field",
    [
        ([1, 2], "genome"),
        (_data(layers="c3x32"), "layers"),
        ({k: v for k, v in _data().items() if k != "lr"}, "lr"),
        (_data(extra=1), "extra"),
        (_data(lr="0.003"), "lr"),
        (_data(lr=0.0031234), "lr"),
        (_data(lr=0.5), "lr"),
        (_data(optimizer="rmsprop"), "optimizer"),
        (_data(weight_decay=0.5), "weight_decay"),
        (_data(batch_size=64.0), "batch_size"),
        (_data(batch_size=7), "batch_size"),
        (_data(layers=[]), "layers"),
        (_data(layers=[_layer()] * 7), "layers"),
        (_data(layers=["conv"]), "layers[0]"),
        (_data(layers=[_layer(), _layer(kernel="3")]), "layers[1].kernel"),
        (_data(layers=[_layer(kernel=2)]), "layers[0].kernel"),
        (_data(layers=[_layer(width=True)]), "layers[0].width"),
        (_data(layers=[_layer(stride=3)]), "layers[0].stride"),
        (_data(layers=[_layer(activation="swish")]), "layers[0].activation"),
        (_data(layers=[_layer(batch_norm=1)]), "layers[0].batch_norm"),
        (_data(layers=[{k: v for k, v in _layer().items() if k != "residual"}]), "layers[0].residual"),
        (_data(layers=[_layer(stride=2)] * 3), "max_downsamples"),
    ],
)
def test_from_dict_rejects_malformed(space: ChainSpace, data: object, field: str) -> None:
    with pytest.raises(InvalidGenome, match=field.replace("[", r"\[").replace("]", r"\]")):
        space.from_dict(data)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "params, name",
    [
        ({"kernels": [2, 3]}, "kernels"),
        ({"kernels": []}, "kernels"),
        ({"kernels": [3, 3]}, "kernels"),
        ({"widths": [0]}, "widths"),
        ({"widths": "32"}, "widths"),
        ({"activations": ["swish"]}, "activations"),
        ({"max_layers": 0}, "max_layers"),
        ({"min_layers": 4, "max_layers": 3}, "max_layers"),
        ({"min_layers": -1}, "min_layers"),
        ({"max_downsamples": -1}, "max_downsamples"),
        ({"batch_norm": ["yes"]}, "batch_norm"),
        ({"residual": []}, "residual"),
        ({"lr_min": 0}, "lr_min"),
        ({"lr_min": "fast"}, "lr_min"),
        ({"lr_min": 0.1, "lr_max": 0.01}, "lr_max"),
        ({"lr_min": 0.0012341, "lr_max": 0.0012342}, "lr_max"),
        ({"optimizers": ["rmsprop"]}, "optimizers"),
        ({"weight_decays": [-1.0]}, "weight_decays"),
        ({"batch_sizes": [0]}, "batch_sizes"),
        ({"max_layer": 3}, "max_layer"),
    ],
)
def test_bad_params_raise(params: dict, name: str) -> None:
    with pytest.raises(ValueError, match=f"'{name}'"):
        ChainSpace(**params)


def test_narrowed_space() -> None:
    space = ChainSpace(kernels=[3], widths=[16], activations=["relu"], max_layers=2, max_downsamples=0,
                       batch_norm=[True], residual=[False], lr_min="1e-3", lr_max="1e-3",
                       optimizers=["adam"], weight_decays=[0], batch_sizes=[32])
    rng = random.Random(0)
    for _ in range(20):
        g = space.sample(rng=rng)
        assert g.lr == 0.001 and g.weight_decay == 0.0 and isinstance(g.weight_decay, float)
        assert all(layer == ConvLayer(3, 16, 1, "relu", True, False) for layer in g.layers)
    hp = MUTATIONS.get("chain_hparam")()
    assert hp(g, space=space, rng=rng) is g  # nothing can change: the parent comes back


@pytest.mark.parametrize("name", MUTATION_NAMES)
def test_mutations(space: ChainSpace, genomes: list[ChainGenome], name: str) -> None:
    op = MUTATIONS.get(name)()
    rng = random.Random(5)
    changed = 0
    for g in genomes:
        before = space.to_dict(g)
        child = op(g, space=space, rng=rng)
        space.validate(child)
        assert space.to_dict(g) == before
        changed += child != g
        if name == "chain_hparam" and child != g:
            diff = [f for f in ("lr", "optimizer", "weight_decay", "batch_size") if getattr(child, f) != getattr(g, f)]
            assert child.layers == g.layers and len(diff) == 1
        if name == "chain_change_layer" and child != g:
            assert len(child.layers) == len(g.layers)
            assert sum(a != b for a, b in zip(child.layers, g.layers)) == 1
    assert changed >= 0.75 * N


def test_crossover(space: ChainSpace, genomes: list[ChainGenome]) -> None:
    op = CROSSOVERS.get("chain_one_point")()
    rng = random.Random(11)
    changed = 0
    for a, b in zip(genomes[::2], genomes[1::2]):
        da, db = space.to_dict(a), space.to_dict(b)
        c1, c2 = op(a, b, space=space, rng=rng)
        space.validate(c1)
        space.validate(c2)
        assert space.to_dict(a) == da and space.to_dict(b) == db
        assert sorted(c1.layers + c2.layers, key=repr) == sorted(a.layers + b.layers, key=repr)
        for f in ("lr", "optimizer", "weight_decay", "batch_size"):
            assert {getattr(c1, f), getattr(c2, f)} == {getattr(a, f), getattr(b, f)}
        changed += (c1, c2) not in ((a, b), (b, a))
    assert changed >= 0.75 * (N // 2)


def test_crossover_respects_depth_bounds() -> None:
    space = ChainSpace(min_layers=2, max_layers=3)
    op = CROSSOVERS.get("chain_one_point")()
    rng = random.Random(3)
    for _ in range(100):
        a, b = space.sample(rng=rng), space.sample(rng=rng)
        for c in op(a, b, space=space, rng=rng):
            assert 2 <= len(c.layers) <= 3


def test_lr_mutation_stays_in_range(space: ChainSpace) -> None:
    rng = random.Random(0)
    g = dataclasses.replace(space.sample(rng=rng), lr=0.03)
    for _ in range(300):
        g = change_hparam(space, g, rng=rng)
        space.validate(g)
    assert space.hp.lr_low <= g.lr <= space.hp.lr_high
