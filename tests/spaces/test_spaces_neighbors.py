"""Neighborhoods of every space (NA-DARTS): distance 1 = one op changed on one kept edge, topology fixed."""

from __future__ import annotations

import math
import random

import pytest

from raynas.errors import SpaceError
from raynas.spaces import SPACES, get_space


def kept_edges(space, genotype) -> list[tuple[str, int]]:
    return [(cell, edge) for cell, edges in space.choices_from_genotype(genotype).items() for edge in edges]


def alternatives(space, genotype) -> list[int]:
    """Per kept edge, how many other ops a derived genotype may put there."""
    return [len(space.derived_ops(cell, edge)) - 1 for cell, edge in kept_edges(space, genotype)]


@pytest.mark.parametrize("name", SPACES.names())
def test_distance_one_count_equals_the_formula(name):
    space = get_space(name)
    genotype = space.sample(random.Random(3))
    neighbors = space.neighbors(genotype)
    assert len(neighbors) == sum(alternatives(space, genotype))
    assert len(set(neighbors)) == len(neighbors) and genotype not in neighbors
    for neighbor in neighbors:
        assert space.validate_genotype(neighbor) is neighbor
        before, after = space.choices_from_genotype(genotype), space.choices_from_genotype(neighbor)
        changed = [(c, e) for c in before for e in before[c] if before[c][e] != after[c].get(e)]
        assert len(changed) == 1 and before[changed[0][0]].keys() == after[changed[0][0]].keys()


@pytest.mark.parametrize("name, expected", [
    ("nb201", 6 * 4),          # 6 edges, 4 other ops each (none included, as in the benchmark)
    ("darts", 2 * 8 * 6),      # 2 cells x 8 kept edges x 6 other non-none ops
    ("darts-nonone", 2 * 8 * 6),
    ("s1", 2 * 8 * 1), ("s2", 2 * 8 * 1), ("s3", 2 * 8 * 1), ("s4", 2 * 8 * 1),  # none never kept in s3
])
def test_known_counts(name, expected):
    space = get_space(name)
    assert len(space.neighbors(space.sample(random.Random(0)))) == expected


def test_radius_two_in_nb201_is_the_binomial_count():
    space = get_space("nb201")
    genotype = space.sample(random.Random(1))
    ball = space.neighborhood(genotype, radius=2)
    assert ball[0] == genotype
    assert len(ball) == 1 + 6 * 4 + math.comb(6, 2) * 4 ** 2
    assert len(set(ball)) == len(ball)
    assert space.neighborhood(genotype, radius=0) == [genotype]
    with pytest.raises(SpaceError, match="radius must be >= 0"):
        space.neighborhood(genotype, radius=-1)


def test_sample_neighbor_is_seeded_and_uniform_over_the_neighbors():
    space = get_space("s2")
    genotype = space.sample(random.Random(0))
    neighbors = set(space.neighbors(genotype))
    draws = [space.sample_neighbor(genotype, random.Random(seed)) for seed in range(200)]
    assert set(draws) <= neighbors and len(set(draws)) == len(neighbors)  # 16 neighbors, all reached
    assert space.sample_neighbor(genotype, random.Random(5)) == draws[5]
