"""The ``nb201`` search space and its operators."""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from pathlib import Path

import pytest
import torch

from evonas.operators import CROSSOVERS, MUTATIONS
from evonas.spaces import SPACES, InvalidGenome, make_space
from evonas.spaces.defaults import genomes_dir
from evonas.spaces.layers import NB201Network
from evonas.spaces.nb201 import NB201_EDGES, NB201_OPS, NB201Genome, NB201Space

CSV_PATH = Path("/work/shared/benchmarks/nb201_cifar10.csv")
BEST_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@pytest.fixture(scope="module")
def space() -> NB201Space:
    return make_space("nb201", {"C": 4, "N": 1})


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    if not CSV_PATH.exists():
        pytest.skip(f"{CSV_PATH} not found")
    with open(CSV_PATH) as fh:
        return list(csv.DictReader(fh))


def _g(*edges: str) -> NB201Genome:
    short = {"n": "none", "s": "skip_connect", "1": "nor_conv_1x1", "3": "nor_conv_3x3", "p": "avg_pool_3x3"}
    return NB201Genome(edges=tuple(short.get(e, e) for e in edges))


def _n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# -- declaration ---------------------------------------------------------
def test_registered_with_defaults() -> None:
    assert SPACES.get("nb201") is NB201Space
    space = make_space("nb201")
    assert (space.C, space.N, space.ops) == (16, 5, NB201_OPS)
    assert space.input_ranks == (3,)
    assert space.size == 5**6


@pytest.mark.parametrize(
    "params",
    [{"ops": ["none", "conv_5x5"]}, {"ops": []}, {"ops": "none"}, {"ops": ["none", "none"]},
     {"C": 0}, {"C": -3}, {"C": 2.5}, {"C": True}, {"N": 0}, {"colour": "red"}],
)
def test_bad_params_raise(params: dict) -> None:
    with pytest.raises(ValueError):
        make_space("nb201", params)


# -- sample / validate / JSON / decode ----------------------------------------
def test_random_genomes_roundtrip_and_decode(space: NB201Space) -> None:
    rng = random.Random(0)
    torch.manual_seed(0)
    for _ in range(200):
        g = space.sample(rng=rng)
        space.validate(g)
        data = json.loads(json.dumps(space.to_dict(g)))
        back = space.from_dict(data)
        assert back == g and space.key(back) == space.key(g)
        assert space.from_arch_str(space.describe(g)) == g
        assert space.hparams(g) == {}
        with torch.no_grad():
            net = space.decode(g, input_shape=(3, 8, 8), num_classes=7)
            assert net(torch.randn(2, 3, 8, 8)).shape == (2, 7)
            net = space.decode(g, input_shape=(3, 32, 32), num_classes=10)
            assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 7, 5), (2, 1, 1), (3, 16, 16)])
def test_decode_small_and_odd_inputs(space: NB201Space, shape: tuple[int, int, int]) -> None:
    net = space.decode(space.from_arch_str(BEST_ARCH), input_shape=shape, num_classes=3)
    assert net(torch.randn(2, *shape)).shape == (2, 3)
    net.eval()
    assert net(torch.randn(1, *shape)).shape == (1, 3)


def test_decode_rejects_wrong_rank(space: NB201Space) -> None:
    assert space.check_input((10,)) is not None
    with pytest.raises(ValueError):
        space.decode(space.from_arch_str(BEST_ARCH), input_shape=(10,), num_classes=2)


def test_same_seed_same_samples(space: NB201Space) -> None:
    def draw(seed: int) -> list[NB201Genome]:
        rng = random.Random(seed)
        return [space.sample(rng=rng) for _ in range(50)]

    assert draw(7) == draw(7) and len(set(draw(7))) > 40 and draw(7) != draw(8)


@pytest.mark.parametrize(
    "data",
    [[], "edges", {}, {"edges": ["none"] * 5}, {"edges": ["none"] * 7}, {"edges": ["conv"] * 6},
     {"edges": [1, 2, 3, 4, 5, 6]}, {"edges": "none"}, {"edges": ["none"] * 6, "lr": 0.1}],
)
def test_malformed_dicts_raise(space: NB201Space, data: object) -> None:
    with pytest.raises(InvalidGenome):
        space.from_dict(data)  # type: ignore[arg-type]


def test_narrowed_op_set() -> None:
    space = make_space("nb201", {"ops": ["skip_connect", "nor_conv_3x3"]})
    rng = random.Random(1)
    for _ in range(50):
        assert set(space.sample(rng=rng).edges) <= {"skip_connect", "nor_conv_3x3"}
    assert len(list(space.all_genomes())) == 2**6 == space.size
    with pytest.raises(InvalidGenome):
        space.validate(_g("n", "s", "s", "s", "s", "s"))
    with pytest.raises(InvalidGenome):
        space.from_arch_str(BEST_ARCH)  # uses nor_conv_1x1


def test_all_genomes_enumerates_the_space() -> None:
    genomes = list(make_space("nb201").all_genomes())
    assert len(genomes) == len(set(genomes)) == 15625


# -- the architecture string -----------------------------------------------
def test_arch_str_order() -> None:
    space = make_space("nb201")
    g = space.from_arch_str("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    assert g == _g("3", "3", "p", "s", "3", "s")
    assert NB201_EDGES == ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))


def test_arch_str_roundtrip_over_the_table(rows: list[dict[str, str]]) -> None:
    space = make_space("nb201")
    assert len(rows) == 15625
    genomes = set()
    for row in rows:
        g = space.from_arch_str(row["arch_str"])
        assert space.to_arch_str(g) == row["arch_str"]
        genomes.add(g)
    assert len(genomes) == 15625


@pytest.mark.parametrize(
    "arch",
    ["", "|none~0|", "|none~0|+|none~0|none~1|", "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~0|",
     "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "|none~0|+|none~0|+|none~0|none~1|none~2|",
     "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
     "|none0|+|none~0|none~1|+|none~0|none~1|none~2|"],
)
def test_bad_arch_str_raises(arch: str) -> None:
    with pytest.raises(InvalidGenome):
        make_space("nb201").from_arch_str(arch)


def test_saved_best_genome(rows: list[dict[str, str]]) -> None:
    space = make_space("nb201")
    saved = json.loads((genomes_dir() / "saved" / "nb201_best.json").read_text())
    assert saved["space"] == "nb201"
    g = space.from_dict(saved["genome"])
    best = max(rows, key=lambda r: float(r["test_acc_200ep"]))
    assert best["index"] == "6111" and space.to_arch_str(g) == best["arch_str"] == BEST_ARCH


# -- canonical form ------------------------------------------------------------
EQUIVALENT = [
    # node 2 feeds nothing (2->3 is none): its input edges do not matter
    (_g("3", "3", "p", "s", "3", "n"), _g("3", "n", "n", "s", "3", "n")),
    (_g("1", "s", "3", "3", "s", "n"), _g("1", "p", "1", "3", "s", "n")),
    # node 1 feeds nothing (1->2 and 1->3 none)
    (_g("3", "s", "n", "1", "n", "p"), _g("p", "s", "n", "1", "n", "p")),
    # node 1 only feeds node 2, which feeds nothing
    (_g("3", "s", "1", "3", "n", "n"), _g("n", "n", "n", "3", "n", "n")),
    # nothing reaches the output: every cell outputs zero
    (_g("3", "3", "3", "n", "n", "n"), _g("s", "p", "1", "n", "n", "n")),
]
DIFFERENT = [
    (_g("3", "3", "p", "s", "3", "s"), _g("3", "n", "n", "s", "3", "s")),
    # node 1 is unreachable from the input but its conv to the output adds a learnable constant
    (_g("n", "s", "n", "s", "3", "n"), _g("n", "s", "n", "s", "n", "n")),
    (_g("n", "n", "n", "s", "1", "n"), _g("n", "n", "n", "s", "3", "n")),
    (_g("3", "1", "1", "1", "1", "1"), _g("1", "1", "1", "1", "1", "1")),
]


@pytest.mark.parametrize("a,b", EQUIVALENT)
def test_equivalent_genomes_share_a_key(a: NB201Genome, b: NB201Genome) -> None:
    space = make_space("nb201")
    assert a != b and space.key(a) == space.key(b)
    assert space.canonical(a) == space.canonical(b)
    assert space.canonical(space.canonical(a)) == space.canonical(a)


@pytest.mark.parametrize("a,b", DIFFERENT)
def test_different_genomes_have_different_keys(a: NB201Genome, b: NB201Genome) -> None:
    space = make_space("nb201")
    assert space.key(a) != space.key(b)


def test_canonical_keys_over_the_table(rows: list[dict[str, str]]) -> None:
    """12,000 genomes are alone in their class; the rest form 205 classes of 5, 25 or 125 genomes."""
    space = make_space("nb201")
    keys = Counter(space.key(space.from_arch_str(r["arch_str"])) for r in rows)
    assert len(keys) == 12205
    assert Counter(keys.values()) == {1: 12000, 5: 100, 25: 100, 125: 5}


def test_pruned_edges_do_not_change_the_output() -> None:
    """Build the full benchmark network (dead edges included): re-drawing the dead edges' weights changes nothing."""
    space = make_space("nb201")
    rng = random.Random(3)
    checked = 0
    while checked < 10:
        g = space.sample(rng=rng)
        canon = space.canonical(g)
        dead = {i for i, (x, y) in enumerate(zip(g.edges, canon.edges)) if x != y}
        if not any(g.edges[i] in ("nor_conv_1x1", "nor_conv_3x3") for i in dead):
            continue
        torch.manual_seed(checked)
        net = NB201Network(g.edges, in_channels=3, C=4, N=1, num_classes=5)
        x = torch.randn(4, 3, 8, 8)
        before = net(x)
        with torch.no_grad():
            for cell in net.cells:
                if hasattr(cell, "live"):
                    for (src, dst), op in zip(cell.live, cell.ops):
                        if NB201_EDGES.index((src, dst)) in dead:
                            for p in op.parameters():
                                p.add_(torch.randn_like(p))
        assert torch.allclose(before, net(x))
        checked += 1


def test_equivalent_genomes_decode_to_the_same_network() -> None:
    space = make_space("nb201", {"C": 4, "N": 1})
    a, b = EQUIVALENT[0]
    torch.manual_seed(0)
    na = space.decode(a, input_shape=(3, 8, 8), num_classes=5)
    torch.manual_seed(0)
    nb = space.decode(b, input_shape=(3, 8, 8), num_classes=5)
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(na(x), nb(x))


def test_zero_fed_conv_is_not_zero() -> None:
    """Why the unreachable-from-input case is not merged: the conv's BatchNorm bias reaches the output."""
    a, b = DIFFERENT[1]
    torch.manual_seed(0)
    net = NB201Network(a.edges, in_channels=3, C=4, N=1, num_classes=5)
    x = torch.randn(4, 3, 8, 8)
    before = net(x)
    with torch.no_grad():
        cell = net.cells[0]
        cell.ops[cell.live.index((1, 3))][2].bias.add_(1.0)  # the BN of the conv on edge 1->3
    assert not torch.allclose(before, net(x))


# -- parameter counts (the benchmark's figures: 1.53 M and 0.07 M) -------------
def test_parameter_counts_match_the_benchmark() -> None:
    space = make_space("nb201")
    conv = space.from_arch_str("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    assert _n_params(space.decode(conv, input_shape=(3, 32, 32), num_classes=10)) == 1531546
    for op in ("none", "skip_connect", "avg_pool_3x3"):
        g = NB201Genome(edges=(op,) * 6)
        assert _n_params(space.decode(g, input_shape=(3, 32, 32), num_classes=10)) == 73306


# -- operators -----------------------------------------------------------------
def test_change_edge() -> None:
    space = make_space("nb201")
    mut = MUTATIONS.get("nb201_change_edge")()
    assert mut.applies_to(space) and not mut.applies_to("chain")
    rng = random.Random(0)
    for _ in range(200):
        parent = space.sample(rng=rng)
        snapshot = space.to_dict(parent)
        child = mut(parent, space=space, rng=rng)
        space.validate(child)
        assert child != parent and space.to_dict(parent) == snapshot
        assert sum(x != y for x, y in zip(child.edges, parent.edges)) == 1


def test_change_edge_respects_the_op_set() -> None:
    space = make_space("nb201", {"ops": ["skip_connect", "avg_pool_3x3"]})
    mut = MUTATIONS.get("nb201_change_edge")()
    rng = random.Random(5)
    for _ in range(100):
        parent = space.sample(rng=rng)
        child = mut(parent, space=space, rng=rng)
        assert child != parent and set(child.edges) <= {"skip_connect", "avg_pool_3x3"}
    one = make_space("nb201", {"ops": ["nor_conv_3x3"]})
    g = one.sample(rng=rng)
    assert mut(g, space=one, rng=rng) == g  # nothing to change


def test_uniform_crossover() -> None:
    space = make_space("nb201")
    cx = CROSSOVERS.get("nb201_uniform")()
    assert cx.applies_to(space)
    rng = random.Random(0)
    done = 0
    while done < 200:
        a, b = space.sample(rng=rng), space.sample(rng=rng)
        if sum(x != y for x, y in zip(a.edges, b.edges)) < 2:
            continue
        snap = (space.to_dict(a), space.to_dict(b))
        c1, c2 = cx(a, b, space=space, rng=rng)
        space.validate(c1)
        space.validate(c2)
        assert (space.to_dict(a), space.to_dict(b)) == snap
        assert {c1, c2}.isdisjoint({a, b})
        for i in range(6):  # each edge comes from one parent, the other child gets the other one
            assert {c1.edges[i], c2.edges[i]} == {a.edges[i], b.edges[i]}
        done += 1


def test_operators_are_seeded() -> None:
    space = make_space("nb201")
    mut, cx = MUTATIONS.get("nb201_change_edge")(), CROSSOVERS.get("nb201_uniform")()
    a, b = space.from_arch_str(BEST_ARCH), NB201Genome(edges=("avg_pool_3x3",) * 6)

    def run(seed: int) -> list:
        rng = random.Random(seed)
        return [mut(a, space=space, rng=rng) for _ in range(10)] + [cx(a, b, space=space, rng=rng) for _ in range(10)]

    assert run(11) == run(11)
