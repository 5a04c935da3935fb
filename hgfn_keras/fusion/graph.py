"""The vertices of the HGFN graph, level by level (paper III-B; docs/DESIGN.md,
"HGFN (paper III-B)", items 4, 7 and 8).

This is plain Python run once when a layer is built: it lists, for every level,
which two earlier vertices each vertex joins. The layer then gathers those vertex
vectors with one `take` per level, so a level is one batched computation.

Vertices are numbered in one *pool*: the M unimodal vertices first, then the
bimodal ones, then each higher level in turn. A level's `left` and `right` hold
pool indices.

- Level 1 (unimodal): one vertex per modality.
- Level 2 (bimodal): one vertex per unordered pair {a, b}: C(M, 2) vertices.
- Level k >= 3: (i) every unordered pair of level k-1 vertices whose modalities
  together number k, and (ii) every level k-1 vertex with one unimodal vertex
  outside it. M = 3 gives 6 trimodal vertices, as the paper says.
"""

import dataclasses
import itertools


@dataclasses.dataclass(frozen=True)
class Level:
    """One level of the graph.

    Attributes:
        order: 1 for unimodal, 2 for bimodal, ...
        members: per vertex, the sorted tuple of modality indices it covers.
        left, right: per vertex, the pool indices of the two vertices it joins
            (empty for level 1).
        offset: the pool index of this level's first vertex.
    """

    order: int
    members: tuple
    left: tuple
    right: tuple
    offset: int

    @property
    def size(self):
        return len(self.members)


def default_max_order(num_modalities):
    """The default deepest level: min(M, 3), as in the paper."""
    return min(num_modalities, 3)


def build_levels(num_modalities, max_order=None):
    """Lists the levels of the graph for M modalities.

    Args:
        num_modalities: M >= 2.
        max_order: the deepest level, 2 <= max_order <= M (None: min(M, 3)).

    Returns:
        A list of `Level`, from level 1 to `max_order`.

    >>> [level.size for level in build_levels(3)]
    [3, 3, 6]
    >>> [level.size for level in build_levels(4)]
    [4, 6, 24]
    """
    m = num_modalities
    if max_order is None:
        max_order = default_max_order(m)
    levels = [Level(1, tuple((i,) for i in range(m)), (), (), 0)]
    offset = m
    for order in range(2, max_order + 1):
        prev = levels[-1]
        members, left, right = [], [], []
        if order == 2:
            for a, b in itertools.combinations(range(m), 2):
                members.append((a, b))
                left.append(a)
                right.append(b)
        else:
            prev_sets = [frozenset(s) for s in prev.members]
            # (i) two vertices of the level below that together cover `order` modalities.
            for u, v in itertools.combinations(range(prev.size), 2):
                union = prev_sets[u] | prev_sets[v]
                if len(union) == order:
                    members.append(tuple(sorted(union)))
                    left.append(prev.offset + u)
                    right.append(prev.offset + v)
            # (ii) a vertex of the level below with one unimodal vertex outside it.
            for u in range(prev.size):
                for i in range(m):
                    if i not in prev_sets[u]:
                        members.append(tuple(sorted(prev_sets[u] | {i})))
                        left.append(prev.offset + u)
                        right.append(i)
        levels.append(Level(order, tuple(members), tuple(left), tuple(right), offset))
        offset += len(members)
    return levels


def count_vertices(num_modalities, max_order=None):
    """Vertex counts per level, without building anything heavy.

    >>> count_vertices(6)
    [6, 15, 120]
    >>> count_vertices(6, max_order=4)[-1]
    3600
    """
    return [level.size for level in build_levels(num_modalities, max_order)]
