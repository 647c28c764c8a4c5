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

The links are drawn with numpy; a compiled loop files them into CSR (`symmetric_csr`), some five times quicker
than scipy's COO route at millions of links. A canonical CSR array (each row's neighbours sorted, none twice) is
the only one for its set of links, so both routes give the same arrays (tests/test_network.py).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from egovsim.model.compiled import jit


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
    block_of = np.repeat(np.arange(len(sizes), dtype=np.int32), sizes)

    # n * mean_degree / 2 links; link e starts at node e % n and reaches ring distance e // n + 1, so each
    # node starts about mean_degree / 2 links to its nearest neighbours on its block's ring
    n_links = round(n * mean_degree / 2.0)
    src = np.empty(n_links, dtype=idx)
    target = np.empty(n_links, dtype=idx)
    _ring_links(src, target, starts, sizes, block_of, n)

    cross = rng.random(n_links) >= homophily
    rewire = ~cross & (rng.random(n_links) < rewiring)
    _redirect(target, src, cross, rewire, rng.random(n_links), starts, sizes, block_of, n)
    del cross, rewire, block_of
    return symmetric_csr(src, target, n)


@jit
def _ring_links(src, target, starts, sizes, block_of, n):
    """Link e from node i = e % n to the node d = e // n + 1 places on along its block's ring."""
    for e in range(src.size):
        d = e // n + 1
        i = e - (d - 1) * n
        b = block_of[i]
        src[e] = i
        target[e] = starts[b] + (i - starts[b] + d) % sizes[b]


@jit
def _redirect(target, src, cross, rewire, r, starts, sizes, block_of, n):
    """Links that cross go to a uniform node outside the source's block (drawn among the n - size other
    positions, the block skipped), if there is one; rewired links to a uniform node of the source's own block."""
    for e in range(src.size):
        b = block_of[src[e]]
        first, size = starts[b], sizes[b]
        if cross[e] and n - size > 0:
            pick = int(r[e] * (n - size))
            target[e] = pick if pick < first else pick + size
        elif rewire[e]:
            target[e] = first + int(r[e] * size)


def symmetric_csr(src: np.ndarray, target: np.ndarray, n: int) -> sp.csr_array:
    """The undirected network of the links src[e] - target[e] over n nodes, as a canonical CSR array of int8 ones:
    both directions of each link, no self-loops, a pair linked twice still one contact."""
    src, target = np.asarray(src), np.asarray(target)
    if src.shape != target.shape or src.ndim != 1:
        raise ValueError(f"src and target must be two vectors of one length, got shapes {src.shape}, {target.shape}")
    if src.size and (min(src.min(), target.min()) < 0 or max(src.max(), target.max()) >= n):
        raise ValueError(f"link ends must be nodes 0..{n - 1}")  # the compiled loop does not check its indices
    indptr, indices = _file_links(src, target, n)
    if indices.size < 2**31:  # int32 throughout (as _compact leaves it): scipy would otherwise copy both to int64
        indptr = indptr.astype(np.int32)
    adj = sp.csr_array((np.ones(indices.size, dtype=np.int8), indices, indptr), shape=(n, n), copy=False)
    adj.has_canonical_format = True
    return _compact(adj)


@jit
def _file_links(src, target, n):
    """(indptr, indices) of the links in both directions, each row sorted and without repeats or self-loops."""
    start = np.zeros(n + 1, dtype=np.int64)
    for e in range(src.size):
        if src[e] != target[e]:
            start[src[e] + 1] += 1
            start[target[e] + 1] += 1
    for i in range(n):
        start[i + 1] += start[i]
    indices = np.empty(start[n], dtype=np.int32)
    fill = start[:n].copy()
    for e in range(src.size):
        a, b = src[e], target[e]
        if a != b:
            indices[fill[a]] = b
            fill[a] += 1
            indices[fill[b]] = a
            fill[b] += 1
    indptr = np.empty(n + 1, dtype=np.int64)
    indptr[0] = 0
    kept = 0
    for i in range(n):
        lo, hi = start[i], start[i + 1]
        if hi - lo > 32:
            indices[lo:hi].sort()
        else:  # insertion sort: a row holds about mean_degree neighbours
            for j in range(lo + 1, hi):
                v = indices[j]
                k = j - 1
                while k >= lo and indices[k] > v:
                    indices[k + 1] = indices[k]
                    k -= 1
                indices[k + 1] = v
        for j in range(lo, hi):  # rows are compacted forward in place: kept <= j
            if j == lo or indices[j] != indices[j - 1]:
                indices[kept] = indices[j]
                kept += 1
        indptr[i + 1] = kept
    return indptr, indices[:kept].copy()


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
        np.add(b.indptr[1:], link, out=indptr[row + 1 : row + m + 1])  # no temporary copy of the links
        np.add(b.indices, row, out=indices[link : link + b.nnz])
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
