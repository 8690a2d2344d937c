"""Zero-shot retrieval metrics: each query's rank of its own item among all candidates by
cosine similarity; R@k is the fraction ranked within the first k, median rank counts from 1.
Chance R@k is k / n. Queries whose item is missing (masked) are left out."""

from __future__ import annotations

import numpy as np


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def ranks(queries: np.ndarray, items: np.ndarray, item_sets: np.ndarray | None = None):
    """1-based rank of query i's own item. `items` [n, d], or [n, k, d] candidate sets (a
    query's score for a set is its best candidate), with `item_sets` [n, k] marking present
    candidates."""
    q = _normalise(np.asarray(queries, np.float64))
    items = _normalise(np.asarray(items, np.float64))
    if items.ndim == 3:
        present = np.ones(items.shape[:2], bool) if item_sets is None else item_sets > 0
        scores = np.einsum("id,jkd->ijk", q, items)
        scores = np.where(present[None], scores, -np.inf).max(axis=2)
    else:
        scores = q @ items.T
    own = np.diag(scores)
    # Ties count against the query: its rank is the number of items scoring at least as high.
    return (scores >= own[:, None]).sum(axis=1)


def retrieval_metrics(rank: np.ndarray, mask: np.ndarray | None = None) -> dict[str, float]:
    rank = np.asarray(rank)
    if mask is not None:
        rank = rank[np.asarray(mask) > 0]
    if rank.size == 0:
        raise ValueError("retrieval: no query with its item present")
    out = {f"R@{k}": float(np.mean(rank <= k)) for k in (1, 5, 10)}
    out["median_rank"] = float(np.median(rank))
    out["chance_R@1"] = 1.0 / rank.size
    out["queries"] = float(rank.size)
    return out
