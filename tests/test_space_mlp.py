"""The ``mlp`` space: sampling, validation, JSON round trip, decoding and its operators."""

from __future__ import annotations

import json
import random
from typing import Any, Mapping

import pytest
import torch

from evonas.operators import CROSSOVERS, MUTATIONS
from evonas.spaces import SPACES, Genome, InvalidGenome, SearchSpace, make_space
from evonas.spaces.hparams import round_lr
from evonas.spaces.mlp import DenseLayer, MLPGenome, MLPSpace

N = 200
MUTATION_NAMES = ["mlp_add_layer", "mlp_remove_layer", "mlp_change_layer", "mlp_hparam"]


@pytest.fixture(scope="module")
def space() -> MLPSpace:
    return make_space("mlp")


@pytest.fixture(scope="module")
def genomes(space: MLPSpace) -> list[MLPGenome]:
    rng = random.Random(4321)
    return [space.sample(rng=rng) for _ in range(N)]


def _layer(**kw: object) -> dict:
    base = dict(width=64, activation="relu", dropout=0.0)
    base.update(kw)
    return base


def _data(**kw: object) -> dict:
    base = {"layers": [_layer()], "lr": 0.001, "optimizer": "adamw", "weight_decay": 1e-4, "batch_size": 128}
    base.update(kw)
    return base


def test_registered() -> None:
    assert SPACES.get("mlp") is MLPSpace
    assert MLPSpace.input_ranks == (1, 3)
    for name in MUTATION_NAMES:
        assert MUTATIONS.get(name).spaces == ("mlp",)
    assert CROSSOVERS.get("mlp_one_point").spaces == ("mlp",)


def test_defaults_come_from_yaml(space: MLPSpace) -> None:
    assert MLPSpace().params == space.params
    assert space.min_layers >= 1 and space.max_layers >= space.min_layers
    assert 0.0 in space.dropouts


def test_sample_validate_roundtrip_decode(space: MLPSpace, genomes: list[MLPGenome]) -> None:
    torch.manual_seed(0)
    for g in genomes:
        space.validate(g)
        assert space.min_layers <= len(g.layers) <= space.max_layers
        assert g.lr == round_lr(g.lr)
        back = space.from_dict(json.loads(json.dumps(space.to_dict(g))))
        assert back == g and space.key(back) == space.key(g)
        for shape in [(64,), (1, 8, 8)]:
            net = space.decode(g, input_shape=shape, num_classes=10)
            assert net(torch.randn(3, *shape)).shape == (3, 10)


def test_decode_rejects_rank_2(space: MLPSpace, genomes: list[MLPGenome]) -> None:
    with pytest.raises(ValueError, match="expects"):
        space.decode(genomes[0], input_shape=(8, 8), num_classes=10)


def test_same_seed_same_genomes(space: MLPSpace) -> None:
    r1, r2 = random.Random(99), random.Random(99)
    assert [space.sample(rng=r1) for _ in range(20)] == [space.sample(rng=r2) for _ in range(20)]


def test_hparams_and_describe(space: MLPSpace) -> None:
    g = space.from_dict(_data(layers=[_layer(width=128), _layer(width=64, dropout=0.2, activation="gelu")]))
    assert space.hparams(g) == {"lr": 0.001, "optimizer": "adamw", "weight_decay": 1e-4, "batch_size": 128}
    assert space.describe(g) == "128-64p0.2:gelu | adamw lr=0.001 wd=1e-4 bs=128"
    assert isinstance(g.layers[0].dropout, float)


def test_zero_hidden_layers_is_a_linear_model() -> None:
    space = MLPSpace(min_layers=0)
    g = space.from_dict(_data(layers=[]))
    net = space.decode(g, input_shape=(5,), num_classes=2)
    assert sum(p.numel() for p in net.parameters()) == 5 * 2 + 2
    assert space.describe(g).startswith("(no layers) |")


@pytest.mark.parametrize(
    "data, field",
    [
        ("mlp", "genome"),
        ({k: v for k, v in _data().items() if k != "batch_size"}, "batch_size"),
        (_data(color="red"), "color"),
        (_data(layers={"width": 64}), "layers"),
        (_data(layers=[]), "layers"),
        (_data(layers=[_layer()] * 5), "layers"),
        (_data(lr=True), "lr"),
        (_data(lr=1e-6), "lr"),
        (_data(optimizer=3), "optimizer"),
        (_data(layers=[_layer(), _layer(width=100)]), "layers[1].width"),
        (_data(layers=[_layer(width="64")]), "layers[0].width"),
        (_data(layers=[_layer(dropout=0.5)]), "layers[0].dropout"),
        (_data(layers=[_layer(dropout="0")]), "layers[0].dropout"),
        (_data(layers=[_layer(activation="softmax")]), "layers[0].activation"),
        (_data(layers=[_layer(kernel=3)]), "layers[0].kernel"),
    ],
)
def test_from_dict_rejects_malformed(space: MLPSpace, data: object, field: str) -> None:
    with pytest.raises(InvalidGenome, match=field.replace("[", r"\[").replace("]", r"\]")):
        space.from_dict(data)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "params, name",
    [
        ({"widths": [-8]}, "widths"),
        ({"widths": [16.5]}, "widths"),
        ({"activations": []}, "activations"),
        ({"dropouts": [1.0]}, "dropouts"),
        ({"dropouts": [0.1, "x"]}, "dropouts"),
        ({"max_layers": True}, "max_layers"),
        ({"min_layers": 5, "max_layers": 4}, "max_layers"),
        ({"lr_max": float("inf")}, "lr_max"),
        ({"optimizers": "adam"}, "optimizers"),
        ({"batch_sizes": [32, 32]}, "batch_sizes"),
        ({"kernels": [3]}, "kernels"),
    ],
)
def test_bad_params_raise(params: dict, name: str) -> None:
    with pytest.raises(ValueError, match=f"'{name}'"):
        MLPSpace(**params)


@pytest.mark.parametrize("name", MUTATION_NAMES)
def test_mutations(space: MLPSpace, genomes: list[MLPGenome], name: str) -> None:
    op = MUTATIONS.get(name)()
    rng = random.Random(5)
    changed = 0
    for g in genomes:
        before = space.to_dict(g)
        child = op(g, space=space, rng=rng)
        space.validate(child)
        assert space.to_dict(g) == before
        changed += child != g
        if name == "mlp_change_layer" and child != g:
            assert sum(a != b for a, b in zip(child.layers, g.layers)) == 1
    assert changed >= 0.7 * N


def test_crossover(space: MLPSpace, genomes: list[MLPGenome]) -> None:
    op = CROSSOVERS.get("mlp_one_point")()
    rng = random.Random(11)
    changed = 0
    for a, b in zip(genomes[::2], genomes[1::2]):
        da, db = space.to_dict(a), space.to_dict(b)
        c1, c2 = op(a, b, space=space, rng=rng)
        space.validate(c1)
        space.validate(c2)
        assert space.to_dict(a) == da and space.to_dict(b) == db
        assert sorted(c1.layers + c2.layers, key=repr) == sorted(a.layers + b.layers, key=repr)
        changed += (c1, c2) not in ((a, b), (b, a))
    assert changed >= 0.75 * (N // 2)


class _OtherSpace(SearchSpace):
    name = "other"

    def sample(self, *, rng: random.Random) -> Genome:
        return Genome()

    def validate(self, genome: Genome) -> None:
        pass

    def decode(self, genome: Genome, *, input_shape: tuple[int, ...], num_classes: int) -> torch.nn.Module:
        return torch.nn.Identity()

    def from_dict(self, data: Mapping[str, Any]) -> Genome:
        return Genome()


def test_operators_refuse_other_spaces(genomes: list[MLPGenome]) -> None:
    with pytest.raises(TypeError, match="layer-list"):
        MUTATIONS.get("mlp_add_layer")()(genomes[0], space=_OtherSpace(), rng=random.Random(0))


def test_layer_genes_are_frozen(genomes: list[MLPGenome]) -> None:
    with pytest.raises(AttributeError):
        genomes[0].layers[0].width = 1  # type: ignore[misc]
    assert isinstance(genomes[0].layers[0], DenseLayer)
