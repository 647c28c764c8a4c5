"""The contact networks (model/network.py): the compiled filing of links into CSR against scipy's own route, and
the networks' structure against what the builder promises (a ring lattice, homophily, no self-loops)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from egovsim.model.network import block_diagonal, block_ring_network, symmetric_csr


def scipy_route(src, target, n):
    """The links as scipy files them (the builder's route before the compiled loop): COO, summed, set to 1."""
    keep = src != target
    rows, cols = np.concatenate((src[keep], target[keep])), np.concatenate((target[keep], src[keep]))
    adj = sp.csr_array((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(n, n))
    adj.sum_duplicates()
    adj.data[:] = 1
    return adj


@pytest.mark.parametrize("n, links, seed", [(1, 3, 0), (7, 40, 1), (50, 30, 2), (1000, 20_000, 3), (300, 9_000, 4)])
def test_links_are_filed_as_scipy_files_them(n, links, seed):
    """Self-loops dropped, pairs linked twice (either way round) kept once, rows sorted: rows of up to about 60
    neighbours, past the insertion sort's 32."""
    rng = np.random.default_rng(seed)
    src = rng.integers(0, n, links).astype(np.int32)
    target = rng.integers(0, n, links).astype(np.int32)
    got, want = symmetric_csr(src, target, n), scipy_route(src, target, n)
    assert got.has_canonical_format and want.has_canonical_format
    np.testing.assert_array_equal(got.indptr, want.indptr)
    np.testing.assert_array_equal(got.indices, want.indices)
    assert got.indices.dtype == np.int32 and got.indptr.dtype == np.int32 and got.data.dtype == np.int8
    assert (got.data == 1).all()


def ring_lattice(size: int, k: int) -> set[tuple[int, int]]:
    return {(i, (i + d) % size) for i in range(size) for d in range(-k, k + 1) if d % size}


@pytest.mark.parametrize("sizes, degree", [([30], 4), ([12, 9, 20, 5], 6), ([3, 40], 2)])
def test_without_rewiring_or_mixing_each_block_is_a_ring_lattice(sizes, degree):
    adj = block_ring_network(np.array(sizes), degree, 1.0, 0.0, np.random.default_rng(0))
    links = set(zip(*adj.nonzero()))
    start, want = 0, set()
    for size in sizes:
        want |= {(start + i, start + j) for i, j in ring_lattice(size, min(degree // 2, (size - 1) // 2 + 1))}
        start += size
    assert links == want


def test_homophily_sends_its_share_of_links_to_other_blocks():
    sizes = np.array([20_000, 30_000, 50_000])
    adj = block_ring_network(sizes, 8, 0.7, 0.1, np.random.default_rng(5))
    block = np.repeat(np.arange(3), sizes)
    rows, cols = adj.nonzero()
    assert (rows != cols).all() and (adj != adj.T).nnz == 0
    across = np.mean(block[rows] != block[cols])
    assert abs(across - 0.3) < 0.01  # 400,000 links: the binomial sd is under 0.001


def test_a_single_block_keeps_its_crossing_links_on_its_ring():
    """With no other block a link drawn to cross stays where the ring put it (it is not rewired either)."""
    mixed = block_ring_network(np.array([500]), 6, 0.0, 0.0, np.random.default_rng(1))
    assert set(zip(*mixed.nonzero())) == ring_lattice(500, 3)


def test_block_diagonal_offsets_each_network():
    a = block_ring_network(np.array([10]), 4, 1.0, 0.5, np.random.default_rng(1))
    b = block_ring_network(np.array([7, 5]), 2, 0.5, 0.0, np.random.default_rng(2))
    both = block_diagonal([a, b])
    np.testing.assert_array_equal(both.toarray(), sp.block_diag((a, b)).toarray())
    assert both.indices.dtype == np.int32


@pytest.mark.parametrize("src, target", [([0, 1], [7, 2]), ([0, -1], [1, 2]), ([0, 1, 2], [1, 2])])
def test_links_outside_the_nodes_are_refused_before_the_compiled_loop(src, target):
    with pytest.raises(ValueError):
        symmetric_csr(np.array(src, dtype=np.int32), np.array(target, dtype=np.int32), 3)
