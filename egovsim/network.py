"""Contact networks built straight into scipy.sparse CSR with numpy.

networkx graphs cost about 1 KB per edge and mesa.discrete_space.Network lays graphs out by default
(238 s at 10,000 nodes, stack-notes.md), so large networks never go through either.

The citizen network is a stochastic block model with small-world structure inside blocks: members of a block
(e.g. rural minority citizens of one province) stand on a ring; each citizen links to its nearest ring
neighbours (local clustering, Watts & Strogatz 1998); a share `rewiring` of those links goes to a random member
of the same block, and a share 1 - `homophily` to a random citizen of another block (McPherson et al. 2001).
The same builder with one block and homophily 1 is a Watts-Strogatz graph, used for civil servants' offices.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def block_ring_network(block_sizes: np.ndarray, mean_degree: float, homophily: float, rewiring: float,
                       rng: np.random.Generator) -> sp.csr_array:
    """Undirected, unweighted network over sum(block_sizes) nodes whose blocks are contiguous index ranges.

    Returns a symmetric CSR array with int8 ones, no self-loops and no duplicate links.
    """
    sizes = np.asarray(block_sizes, dtype=np.int64)
    n = int(sizes.sum())
    if n == 0:
        return sp.csr_array((0, 0), dtype=np.int8)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    block_of = np.repeat(np.arange(len(sizes)), sizes)

    # n * mean_degree / 2 links; link e starts at node e % n and reaches ring distance e // n + 1, so each
    # node starts about mean_degree / 2 links to its nearest neighbours on its block's ring.
    n_links = int(round(n * mean_degree / 2.0))
    link = np.arange(n_links, dtype=np.int64)
    src = link % n
    dist = link // n + 1
    b = block_of[src]
    b_start, b_size = starts[b], sizes[b]
    target = b_start + (src - b_start + dist) % b_size

    u_cross = rng.random(n_links)
    u_rewire = rng.random(n_links)
    r = rng.random(n_links)

    others = n - b_size
    cross = (u_cross >= homophily) & (others > 0)
    # a uniform node outside the source's block: draw among the n - size other positions, skip the block
    pick = (r[cross] * others[cross]).astype(np.int64)
    target[cross] = np.where(pick < b_start[cross], pick, pick + b_size[cross])

    rewire = ~cross & (u_rewire < rewiring)
    target[rewire] = b_start[rewire] + (r[rewire] * b_size[rewire]).astype(np.int64)

    keep = target != src
    rows = np.concatenate((src[keep], target[keep]))
    cols = np.concatenate((target[keep], src[keep]))
    adj = sp.coo_array((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(n, n)).tocsr()
    adj.sum_duplicates()
    adj.data[:] = 1  # a pair linked twice is still one contact
    adj.indices = adj.indices.astype(np.int32, copy=False)
    adj.indptr = adj.indptr.astype(np.int64 if adj.nnz >= 2**31 else np.int32, copy=False)
    return adj


def neighbours_of(adj: sp.csr_array, nodes: np.ndarray) -> np.ndarray:
    """All neighbours of `nodes`, with repetition (one entry per link), without a Python loop."""
    starts = adj.indptr[nodes]
    counts = adj.indptr[nodes + 1] - starts
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, dtype=adj.indices.dtype)
    # positions starts[i] .. starts[i] + counts[i] - 1, concatenated
    offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    return adj.indices[np.arange(total) + offsets]
