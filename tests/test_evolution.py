"""The DEAP glue: our toolbox works with DEAP's own algorithms; fitness and individuals behave as DEAP expects."""

from __future__ import annotations

import copy
import pickle
import random

from deap import algorithms, tools

from evonas.evolution import Fitness, Individual, Variation, make_toolbox, select
from evonas.spaces import make_space


def test_toolbox_runs_deap_eaMuPlusLambda() -> None:
    space = make_space("nb201")
    variation = Variation.default(space)
    score = lambda g: (sum(e == "nor_conv_3x3" for e in g.edges),)  # noqa: E731
    random.seed(0)
    tb = make_toolbox(space, variation, (1.0,), score, rng=random.Random(0))
    pop = tb.population(n=12)
    hof = tools.HallOfFame(3)
    pop, log = algorithms.eaMuPlusLambda(pop, tb, mu=12, lambda_=24, cxpb=0.3, mutpb=0.7, ngen=8, halloffame=hof, verbose=False)
    assert len(pop) == 12 and len(log) == 9
    assert hof[0].fitness.values[0] >= 5  # the optimum is 6 conv3x3 edges; evolution climbs
    assert all(space.is_valid(ind.genome) for ind in pop)


def test_toolbox_operators_change_the_individual_in_place_as_deap_s_do() -> None:
    """DEAP's tutorials call ``toolbox.mutate(ind)`` and ``toolbox.mate(a, b)`` for their effect on the individuals
    (then ``del ind.fitness.values``): the toolbox's operators change them in place, and return them too."""
    space = make_space("nb201")
    tb = make_toolbox(space, Variation.default(space), (1.0,), lambda g: (1.0,), rng=random.Random(0))
    pop = tb.population(n=4)
    for ind in pop:
        ind.fitness.values = tb.evaluate(ind)
    before = [(ind.key, ind.genome) for ind in pop]
    for ind in pop[:2]:
        returned = tb.mutate(ind)
        assert returned == (ind,) and returned[0] is ind
    c1, c2 = tb.mate(pop[2], pop[3])
    assert c1 is pop[2] and c2 is pop[3]
    for ind, (key, genome) in zip(pop, before):
        assert ind.key != key and ind.genome != genome and ind.key == space.key(ind.genome), ind.origin
        assert not ind.fitness.valid and ind.metrics == {} and space.is_valid(ind.genome)
    assert pop[0].parents == (before[0][0],) and pop[0].origin.startswith("mutation:")
    assert pop[2].parents == (before[2][0], before[3][0]) and pop[2].origin.startswith("crossover:")


def test_fitness_weights_per_instance_survive_copy_and_pickle() -> None:
    f = Fitness((0.5, 1000.0), weights=(1.0, -1.0))
    for clone in (copy.deepcopy(f), pickle.loads(pickle.dumps(f))):
        assert clone.weights == (1.0, -1.0)
        assert clone.values == (0.5, 1000.0)
        assert clone.wvalues == (0.5, -1000.0)


def test_individual_equality_by_key_and_pickle() -> None:
    space = make_space("nb201")
    g = space.sample(rng=random.Random(1))
    a = Individual(g, space.key(g), (1.0,))
    a.fitness.values = (0.3,)
    b = pickle.loads(pickle.dumps(a))
    assert a == b and b.fitness.values == (0.3,) and type(b) is Individual


def test_variation_children_valid_and_parents_untouched() -> None:
    space = make_space("nb201")
    variation = Variation.default(space)
    rng = random.Random(5)
    parent = space.sample(rng=rng)
    before = space.to_dict(parent)
    for _ in range(50):
        child, name = variation.mutate(parent, rng=rng)
        assert space.is_valid(child) and name
    assert space.to_dict(parent) == before


def test_select_is_reproducible_and_restores_global_random() -> None:
    space = make_space("nb201")
    rng = random.Random(2)
    pop = []
    for i in range(10):
        g = space.sample(rng=rng)
        ind = Individual(g, space.key(g), (1.0,))
        ind.fitness.values = (float(i),)
        pop.append(ind)
    random.seed(123)
    state = random.getstate()
    a = [i.key for i in select("tournament", pop, 5, rng=random.Random(9), tournsize=3)]
    b = [i.key for i in select("tournament", pop, 5, rng=random.Random(9), tournsize=3)]
    assert a == b
    assert random.getstate() == state


def test_toolbox_built_from_an_experiment_file_runs_eaMuPlusLambda() -> None:
    from conftest import REPO
    from evonas.config import load_experiment
    from evonas.engine.build import build

    tb = build(load_experiment(REPO / "experiments" / "nb201_toy.yaml")).toolbox()
    random.seed(1)
    pop = tb.population(n=10)
    hof = tools.HallOfFame(1)
    pop, log = algorithms.eaMuPlusLambda(pop, tb, mu=10, lambda_=20, cxpb=0.3, mutpb=0.6, ngen=5, halloffame=hof, verbose=False)
    assert len(log) == 6 and len(pop) == 10
    first = max(ind.fitness.values[0] for ind in pop)
    assert hof[0].fitness.values[0] == first and 0 <= first < 1
