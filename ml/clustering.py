"""Shared k-means plumbing for friction clusters and user segments.

* :func:`scale_features` turns a frame of numeric and categorical columns into the matrix k-means
  sees: numeric columns optionally ``log1p``-compressed (counts and money are heavy-tailed) and then
  standardised to mean 0, standard deviation 1; each categorical column one-hot encoded and scaled
  by ``1/sqrt(2)`` so that two persons who differ in one categorical column are exactly one unit
  apart, the same as one standard deviation of a numeric column (otherwise a many-valued column
  such as country would dominate the distances).
* :func:`choose_k` fits k-means for every k in a range and keeps the k with the highest mean
  silhouette (ties go to the smaller k). Fixed ``random_state`` and ``n_init`` make reruns give the
  same clusters; cluster labels are then renumbered in a canonical order (see :func:`kmeans`) so
  that they do not depend on k-means' internal initialisation order either.

Each k-means fit runs single-threaded (``threadpool_limits(1)``): on the small frames here OpenMP
threads only fight each other, and on a busy two-core machine that made a one-second fit take
ten. :func:`choose_k` runs the fits for the different k side by side instead, one thread each, as
many as there are cores (the fits are independent, so the result is the same). Above
``KMEANS_FIT_SAMPLE`` rows k-means is fitted on a fixed-seed sample and every row assigned to its
nearest centroid (deterministic; identical results below that size).

Silhouette of a point: ``(b - a) / max(a, b)`` with ``a`` its mean distance to its own cluster
and ``b`` the mean distance to the nearest other cluster; the score is the mean over points, in
[-1, 1]. Above 0.5 is a clear structure, below 0.25 little structure.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import pairwise_distances_chunked, silhouette_samples
from threadpoolctl import threadpool_limits

from ml.errors import InsufficientDataError

SILHOUETTE_SAMPLE = 5000
# Above this many rows, k-means is fitted on a fixed-seed sample of this size and every row is then
# assigned to its nearest centroid: centroids of 50,000 points are as good as those of millions for
# the handful of clusters chosen here, and the fit stays linear in the data (predict) instead of
# n_init x iterations x rows. At or below it (every demo-sized input) nothing changes.
KMEANS_FIT_SAMPLE = 50_000


def scale_features(
    frame: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str] = (),
    log_columns: Sequence[str] = (),
) -> tuple[np.ndarray, list[str]]:
    """The k-means input matrix and its column names (``<col>`` or ``<col>=<value>``).

    A numeric column with no variance becomes a column of zeros (it carries no information);
    missing categorical values become the level ``"unknown"``.
    """
    if frame.empty:
        raise InsufficientDataError("no rows to scale")
    blocks: list[np.ndarray] = []
    names: list[str] = []
    for col in numeric:
        values = frame[col].astype(float).to_numpy()
        if np.isnan(values).any():
            raise ValueError(f"numeric feature {col!r} has missing values")
        if col in log_columns:
            if (values < 0).any():
                raise ValueError(f"log-scaled feature {col!r} has negative values")
            values = np.log1p(values)
        std = values.std()
        blocks.append(((values - values.mean()) / std if std > 0 else values * 0.0)[:, None])
        names.append(col)
    for col in categorical:
        levels = frame[col].astype("object").where(frame[col].notna(), "unknown").astype(str)
        for level in sorted(levels.unique()):
            blocks.append(((levels == level).to_numpy(dtype=float) / np.sqrt(2.0))[:, None])
            names.append(f"{col}={level}")
    if not blocks:
        raise ValueError("no features given")
    return np.hstack(blocks), names


@dataclass(frozen=True)
class KMeansFit:
    labels: np.ndarray
    k: int
    silhouette: float
    silhouette_by_k: dict[int, float]


def kmeans(x: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """k-means labels renumbered canonically: cluster 0 is the largest, ties broken by the
    centroid's coordinates, so labels are stable across reruns and library versions."""
    with threadpool_limits(limits=1):
        return _kmeans(x, k, seed)


def _kmeans(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    """:func:`kmeans` without setting the thread limits (the caller has)."""
    n = x.shape[0]
    fit_on = x
    if n > KMEANS_FIT_SAMPLE:
        rows = np.random.default_rng(seed).choice(n, size=KMEANS_FIT_SAMPLE, replace=False)
        fit_on = x[np.sort(rows)]
    model = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(fit_on)
    raw = model.labels_ if fit_on is x else model.predict(x)
    sizes = np.bincount(raw, minlength=k)
    order = sorted(
        range(k), key=lambda c: (-sizes[c], tuple(np.round(model.cluster_centers_[c], 9)))
    )
    remap = np.empty(k, dtype=int)
    remap[order] = np.arange(k)
    return remap[raw]


def _distinct_rows(x: np.ndarray, enough: int) -> int:
    """The number of distinct rows of ``x`` (to 12 decimals), exact up to ``enough``: beyond it
    only "at least ``enough``" matters, and every k-th row of a few thousand usually tells."""
    rounded = np.round(x, 12)
    spread = rounded[:: max(1, len(x) // 5_000)]
    found = len(np.unique(spread, axis=0))
    return found if found >= enough else len(np.unique(rounded, axis=0))


def choose_k(x: np.ndarray, k_range: Sequence[int] = range(2, 7), seed: int = 0) -> KMeansFit:
    """Fit k-means for each k in ``k_range`` and keep the k with the best silhouette.

    Ks that the data cannot support (more clusters than distinct points, or as many as rows:
    the silhouette needs 2 <= k <= rows - 1) are left out; if none is
    left, :class:`InsufficientDataError` is raised. Silhouettes are computed on at most
    ``SILHOUETTE_SAMPLE`` points (a fixed-seed sample) to bound the quadratic cost; the sample
    and its distances are the same for every k, so they are computed once (the scores are
    exactly ``sklearn.metrics.silhouette_score(x, labels, sample_size=..., random_state=seed)``).
    """
    n = x.shape[0]
    distinct = _distinct_rows(x, enough=max(k_range, default=0))
    ks = sorted(k for k in k_range if 2 <= k <= min(distinct, n - 1))
    if not ks:
        raise InsufficientDataError(
            f"{n} rows with {distinct} distinct points cannot support any k in {list(k_range)}"
        )
    scores: dict[int, float] = {}
    labels_by_k: dict[int, np.ndarray] = {}
    sample = (
        np.random.RandomState(seed).permutation(n)[:SILHOUETTE_SAMPLE]
        if n > SILHOUETTE_SAMPLE
        else np.arange(n)
    )
    chunks = list(pairwise_distances_chunked(x[sample]))
    distances = chunks[0] if len(chunks) == 1 else np.vstack(chunks)

    def fit(k: int) -> tuple[np.ndarray, float | None]:
        # OpenMP's thread count is per thread: limit it in the worker, not only in the caller
        with threadpool_limits(limits=1, user_api="openmp"):
            labels = _kmeans(x, k, seed)
        if (labels == labels[0]).all():  # fewer than two clusters
            return labels, None
        score = silhouette_samples(distances, labels[sample], metric="precomputed")
        return labels, float(np.mean(score))

    # the fits for different k are independent: as many at a time as there are cores, each on
    # one (results do not depend on it)
    with threadpool_limits(limits=1), ThreadPoolExecutor(os.cpu_count()) as pool:
        for k, (labels, score) in zip(ks, pool.map(fit, ks), strict=True):
            if score is not None:
                scores[k], labels_by_k[k] = score, labels
    if not scores:
        raise InsufficientDataError("k-means found fewer than two clusters for every k")
    best = max(scores, key=lambda k: (round(scores[k], 12), -k))
    return KMeansFit(
        labels=labels_by_k[best], k=best, silhouette=scores[best], silhouette_by_k=scores
    )
