"""NB201's isomorphic cells: 15,625 arch strings, 6,466 unique cells.

Two arch strings are the same cell when they compute the same function whatever their weights. NB201's own
rule (Dong & Yang 2020) folds the two ops that carry no weights of their own: ``skip_connect`` passes its
source on unchanged and ``none`` contributes zero. Each node gets a canonical term string, walking the nodes
in order from the input (node 0): every incoming edge gives a term, which is

- ``ZERO`` when its op is ``none`` or its source node's string is exactly ``ZERO`` (a zero passed on);
- the source's string itself for ``skip_connect``;
- ``(source)@op`` otherwise;

and a node's string is its terms sorted and joined with ``+`` (zero terms included, as in NB201). The
output node's string names the cell. Every unique cell gets an id: the order in which its first member
appears in :meth:`raynas.spaces.nb201.NB201Space.enumerate_genotypes` (edge 0's op varying slowest), and that
first member is its representative arch string.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from raynas.spaces.genotype import NB201Genotype

#: the term of an edge that contributes nothing
ZERO = "#"
#: the ops without weights of their own
NONE, SKIP = "none", "skip_connect"


def canonical_string(genotype: NB201Genotype | str, fold_zeros: bool = True) -> str:
    """The canonical string of an NB201 cell (arch string or genotype): equal for isomorphic cells.

    ``fold_zeros=False`` folds only ``skip_connect`` (every op but skip wraps its source, ``none`` too):
    the coarser rule under which NB201 has 12,751 distinct cells instead of 6,466.
    """
    if isinstance(genotype, str):
        genotype = NB201Genotype.parse(genotype)
    nodes = ["0"]
    for node in genotype.nodes:
        terms = []
        for op, src in node:
            source = nodes[src]
            if fold_zeros and (op == NONE or source == ZERO):
                terms.append(ZERO)
            elif op == SKIP:
                terms.append(source)
            else:
                terms.append(f"({source})@{op}")
        nodes.append("+".join(sorted(terms)))
    return nodes[-1]


@dataclass(frozen=True)
class UniqueCells:
    """The space's arch strings grouped by isomorphism.

    ``arch_strings[i]`` is the i-th arch string of the space's enumeration, ``cell_of[i]`` its unique cell id;
    ``representatives[c]`` is cell ``c``'s first arch string and ``members[c]`` how many arch strings it has.
    """

    arch_strings: tuple[str, ...]
    cell_of: tuple[int, ...]
    representatives: tuple[str, ...]
    members: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.representatives)

    @functools.cached_property
    def _index(self) -> dict[str, int]:
        return {arch: cell for arch, cell in zip(self.arch_strings, self.cell_of)}

    def cell_id(self, arch: str | NB201Genotype) -> int:
        """The unique cell id of an arch string (any spacing) or genotype; KeyError if it is not in the space."""
        text = str(arch) if isinstance(arch, NB201Genotype) else str(NB201Genotype.parse(arch))
        return self._index[text]


@functools.lru_cache(maxsize=1)
def unique_cells() -> UniqueCells:
    """Every NB201 arch string with its unique cell (computed once per process, about 0.1 s)."""
    from raynas.spaces.nb201 import NB201

    arch_strings: list[str] = []
    cell_of: list[int] = []
    representatives: list[str] = []
    members: list[int] = []
    ids: dict[str, int] = {}
    for genotype in NB201.enumerate_genotypes():
        key = canonical_string(genotype)
        cell = ids.get(key)
        if cell is None:
            cell = ids[key] = len(representatives)
            representatives.append(str(genotype))
            members.append(0)
        members[cell] += 1
        arch_strings.append(str(genotype))
        cell_of.append(cell)
    return UniqueCells(tuple(arch_strings), tuple(cell_of), tuple(representatives), tuple(members))
