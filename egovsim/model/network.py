"""Contact networks built straight into scipy.sparse CSR with numpy.

networkx graphs cost about 1 KB per edge and mesa.discrete_space.Network lays graphs out by default
(238 s at 10,000 nodes, docs/references/stack-notes.md), so large networks never go through either.

The citizen network is a stochastic block model with small-world structure inside blocks: members of a block
(e.g. rural minority citizens of one province) stand on a ring; each citizen links to its nearest ring
neighbours (local clustering, Watts & Strogatz 1998); a share `rewiring` of those links goes to a random member
of the same block, and a share 1 - `homophily` to a random citizen of another block (McPherson et al. 2001).
The same builder with one block and homophily 1 is a Watts-Strogatz graph, used for civil servants' offices.

Memory: indices are int32 (indptr int64 only past 2**31 links), data int8: about 11 bytes per link (each is
stored in both directions), 0.2 GB for the 17 million links of 4.3 million citizens at mean degree 8.
Building a province's network peaks at about 35 bytes per link, freed before the next province's.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def block_ring_network(
    block_sizes: np.ndarray, mean_degree: float, homophily: float, rewiring: float, rng: np.random.Generator
) -> sp.csr_array:
    """Undirected, unweighted network over sum(block_sizes) nodes whose blocks are contiguous index ranges.

    Returns a symmetric CSR array with int8 ones, no self-loops and no duplicate links.
    """
    sizes = np.asarray(block_sizes, dtype=np.int64)
    n = int(sizes.sum())
    if n == 0:
        return sp.csr_array((0, 0), dtype=np.int8)
    idx = np.int32 if n < 2**31 - 1 else np.int64
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    block_of = np.repeat(np.arange(len(sizes), dtype=idx), sizes)

    # n * mean_degree / 2 links; link e starts at node e % n and reaches ring distance e // n + 1, so each
    # node starts about mean_degree / 2 links to its nearest neighbours on its block's ring. Built round by
    # round (round d: every node's link at distance d) instead of with % and // over all links.
    n_links = round(n * mean_degree / 2.0)
    rounds = -(-n_links // n)
    src = np.empty(n_links, dtype=idx)
    target = np.empty(n_links, dtype=idx)
    b_start = np.empty(n_links, dtype=idx)
    b_size = np.empty(n_links, dtype=idx)
    node = np.arange(n, dtype=idx)
    start_of, size_of = starts.astype(idx)[block_of], sizes.astype(idx)[block_of]
    end_of = start_of + size_of
    for d in range(1, rounds + 1):
        lo, hi = (d - 1) * n, min(d * n, n_links)
        m = hi - lo
        src[lo:hi] = node[:m]
        b_start[lo:hi] = start_of[:m]
        b_size[lo:hi] = size_of[:m]
        t = node[:m] + idx(d)
        over = t >= end_of[:m]
        if d < sizes.min():  # one wrap around the ring at most
            t[over] -= size_of[:m][over]
        else:
            t[over] = start_of[:m][over] + (t[over] - start_of[:m][over]) % size_of[:m][over]
        target[lo:hi] = t
    del start_of, size_of, end_of, node, block_of

    u_cross = rng.random(n_links)
    cross = u_cross >= homophily
    del u_cross
    u_rewire = rng.random(n_links)
    rewire = ~cross & (u_rewire < rewiring)
    del u_rewire
    r = rng.random(n_links)

    cross &= (n - b_size) > 0
    # a uniform node outside the source's block: draw among the n - size other positions, skip the block
    bs, bz = b_start[cross], b_size[cross]
    pick = (r[cross] * (n - bz)).astype(idx)
    target[cross] = np.where(pick < bs, pick, pick + bz)
    target[rewire] = b_start[rewire] + (r[rewire] * b_size[rewire]).astype(idx)
    del r, cross, rewire, bs, bz, pick, b_start, b_size

    keep = target != src
    rows = np.concatenate((src[keep], target[keep]))
    cols = np.concatenate((target[keep], src[keep]))
    del src, target, keep
    adj = sp.csr_array((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(n, n))
    del rows, cols
    adj.sum_duplicates()
    adj.data[:] = 1  # a pair linked twice is still one contact
    return _compact(adj)


def _compact(adj: sp.csr_array) -> sp.csr_array:
    adj.indices = adj.indices.astype(np.int32, copy=False)
    adj.indptr = adj.indptr.astype(np.int64 if adj.nnz >= 2**31 else np.int32, copy=False)
    return adj


def block_diagonal(blocks: list[sp.csr_array]) -> sp.csr_array:
    """CSR arrays side by side on the diagonal (networks of separate provinces), by concatenating their
    index arrays: no COO detour, so no extra copy of the links."""
    if len(blocks) == 1:
        return blocks[0]
    n = sum(b.shape[0] for b in blocks)
    nnz = sum(b.nnz for b in blocks)
    big = nnz >= 2**31
    indptr = np.empty(n + 1, dtype=np.int64 if big else np.int32)
    indices = np.empty(nnz, dtype=np.int32)
    row = link = 0
    indptr[0] = 0
    for b in blocks:
        m = b.shape[0]
        indptr[row + 1 : row + m + 1] = b.indptr[1:] + link
        indices[link : link + b.nnz] = b.indices + row
        row, link = row + m, link + b.nnz
    adj = sp.csr_array((np.ones(nnz, dtype=np.int8), indices, indptr), shape=(n, n))
    adj.has_canonical_format = True
    return adj


def neighbours_of(adj: sp.csr_array, nodes: np.ndarray) -> np.ndarray:
    """All neighbours of `nodes`, with repetition (one entry per link), without a Python loop."""
    indptr = adj.indptr
    starts = indptr[nodes]
    counts = indptr[nodes + 1] - starts
    if nodes.size == 1:
        return adj.indices[starts[0] : starts[0] + counts[0]]
    ends = np.cumsum(counts)
    total = int(ends[-1]) if ends.size else 0
    if total == 0:
        return np.empty(0, dtype=adj.indices.dtype)
    # positions starts[i] .. starts[i] + counts[i] - 1, concatenated
    offsets = np.repeat(starts - (ends - counts), counts)
    offsets += np.arange(total, dtype=offsets.dtype)
    return adj.indices[offsets]
