"""Feature recommendations from implicit feedback: ALS (``implicit``) against a popularity baseline.

* **Interactions**: one row per (person, item) event with a weight by event kind (default: a view
  counts 1, a use 3, a purchase 5); a person's weights on an item are summed.
* **Model**: ``implicit``'s alternating least squares for implicit feedback (Hu, Koren and
  Volinsky 2008): confidence ``1 + alpha x weight``, preference 1 for every observed pair, person
  and item factors fitted by weighted least squares. One thread and a fixed ``random_state`` make
  reruns identical. A person's scores are the dot products of their factors with every item's;
  items they already have are never recommended; ties go to the more popular item, then by name.
* **Popularity baseline**: items ranked by the number of distinct persons who interacted with
  them in training (ties by name), minus the items the person already has. Cold-start persons
  (no interactions at all) get exactly this list.
* **Time-split holdout**: interactions before ``cutoff`` (default: the time below which
  ``1 - holdout_fraction`` of interactions fall) train the models; a person's *relevant* items are
  the items they first interacted with at or after the cutoff and never before. Persons with
  training interactions and at least one relevant item are evaluated.
* **precision@k** = hits in the top k / k; **recall@k** = hits in the top k / relevant items;
  both averaged over evaluated persons (a person given fewer than k items still divides by k).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import sparse

from ml.errors import InsufficientDataError
from ml.features import EventLog

# Above this many persons, ALS is fitted on a fixed-seed sample of this many, and every person's
# factors are then solved exactly against the fitted item factors (implicit's recalculate_user,
# one least-squares step per person): item factors from 50,000 persons are as good as from
# millions for a handful of items, and the fit no longer grows with the persons. At or below it
# (every demo-sized input) nothing changes.
ALS_FIT_SAMPLE = 50_000


def interactions_from_events(
    events: pd.DataFrame | EventLog,
    weights: Mapping[str, float],
    item_property: str | None = None,
) -> pd.DataFrame:
    """Weighted interactions: ``person_id``, ``item``, ``event_time``, ``weight``.

    Only events named in ``weights`` count (the pipeline's are behaviour.features', through
    ``orchestration.learning.tables.feature_weights``). The item is the event name, or, with
    ``item_property``, that key of the JSON ``properties`` (e.g. a product id on view / add /
    purchase events weighted 1 / 3 / 5); events without it are skipped. From an
    :class:`~ml.features.EventLog`, ``person_id`` and ``item`` are categorical.
    """
    if isinstance(events, EventLog):
        keep = events.named(list(weights))
        person_id = pd.Categorical.from_codes(events.person[keep], categories=events.persons)
        event_time = events.time[keep].astype("datetime64[us]")
        if item_property is None:
            # Straight from the log's codes: at 35M interactions, going through a frame of every
            # event and a Python string per person_id took 14 s and 3 GB more.
            name = events.name[keep]
            weight_of_name = np.array([weights.get(n, np.nan) for n in events.names], dtype=float)
            return pd.DataFrame(
                {
                    "person_id": person_id,
                    "item": pd.Categorical.from_codes(name, categories=events.names),
                    "event_time": event_time,
                    "weight": weight_of_name[name],
                }
            )
        events = pd.DataFrame(
            {
                "person_id": person_id,
                "event_name": pd.Categorical.from_codes(events.name[keep], categories=events.names),
                "event_time": event_time,
                "properties": None if events.properties is None else events.properties[keep],
            }
        )
    ev = events[events["event_name"].isin(list(weights))]
    out = pd.DataFrame(
        {
            "person_id": ev["person_id"].to_numpy(),
            "event_time": pd.to_datetime(ev["event_time"]).to_numpy(),
            "weight": ev["event_name"].map(weights).astype(float).to_numpy(),
        }
    )
    if item_property is None:
        out["item"] = ev["event_name"].array
    else:
        out["item"] = (
            ev["properties"]
            .map(lambda t: json.loads(t).get(item_property) if isinstance(t, str) else None)
            .to_numpy()
        )
        out = out[out["item"].notna()]
        out["item"] = out["item"].astype(str)
    return out[["person_id", "item", "event_time", "weight"]].reset_index(drop=True)


def time_split(
    interactions: pd.DataFrame, cutoff=None, holdout_fraction: float = 0.2
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """(train, test, cutoff): train holds interactions before ``cutoff``, test the rest."""
    times = pd.to_datetime(interactions["event_time"])
    cutoff = _cutoff(times.to_numpy(), cutoff, holdout_fraction)
    return interactions[times < cutoff], interactions[times >= cutoff], cutoff


def _cutoff(times: np.ndarray, cutoff, holdout_fraction: float) -> pd.Timestamp:
    """``cutoff``, or the time below which ``1 - holdout_fraction`` of ``times`` fall: the
    value at that position in sorted order, found by partitioning (linear time: sorting 35M
    times took seconds)."""
    if not len(times):
        raise InsufficientDataError("no interactions")
    if cutoff is None:
        if not 0 < holdout_fraction < 1:
            raise ValueError("holdout_fraction must be in (0, 1)")
        position = int(len(times) * (1 - holdout_fraction))
        cutoff = np.partition(times, position)[position]
    return pd.Timestamp(cutoff)


# Interactions are summed per (person, item) this many rows at a time.
_CHUNK = 4_000_000


@dataclass(frozen=True)
class _Coded:
    """Interactions as arrays, in their row order: each row's person and item as a code into
    ``persons`` and ``items`` (the ones the rows have, sorted as ``pd.factorize(sort=True)``
    sorts them), its time and its weight.

    The models below work on these and on per-pair sums (:meth:`totals`), not on frames: at 35M
    interactions (the bench), the frames' copies for the time split, the sparse matrix built from
    every row and pandas' group-bys per item held about 2.5 GB more at once, in the learning step
    that set the pipeline's memory peak (bench/README.md)."""

    persons: np.ndarray
    items: np.ndarray
    person: np.ndarray
    item: np.ndarray
    time: np.ndarray
    weight: np.ndarray

    @classmethod
    def of(cls, interactions: pd.DataFrame) -> _Coded:
        person, persons = pd.factorize(interactions["person_id"], sort=True)
        item, items = pd.factorize(interactions["item"], sort=True)
        times = interactions["event_time"]
        if not pd.api.types.is_datetime64_dtype(times):
            times = pd.to_datetime(times)
        return cls(
            np.asarray(persons, dtype=object),
            np.asarray(items, dtype=object),
            person.astype(np.int32),
            item.astype(np.int32),
            times.to_numpy(),
            interactions["weight"].to_numpy(dtype=np.float64),
        )

    def totals(
        self, where: np.ndarray | None = None
    ) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
        """Per (person, item), as persons x items matrices: the summed weights (in float64) and
        the number of interactions, of every row or of the rows where the mask ``where`` holds.
        A pair whose weights sum to 0 has no weight entry, as if it had not been used."""
        shape = (len(self.persons), len(self.items))
        weights = sparse.csr_matrix(shape, dtype=np.float64)
        counts = sparse.csr_matrix(shape, dtype=np.int64)
        for start in range(0, len(self.person), _CHUNK):
            part = slice(start, start + _CHUNK)
            keep = slice(None) if where is None else where[part]
            at = (self.person[part][keep], self.item[part][keep])
            weights += sparse.csr_matrix((self.weight[part][keep], at), shape=shape)
            counts += sparse.csr_matrix((np.ones(len(at[0]), dtype=np.int64), at), shape=shape)
        return weights, counts


def _persons_per_item(counts: sparse.csr_matrix) -> np.ndarray:
    """For each item (column), the number of persons (rows) with an interaction on it."""
    return np.bincount(counts.indices, minlength=counts.shape[1])


def _ranking(items, item_persons: np.ndarray) -> list[str]:
    """``items`` by their persons (most first), ties by item name."""
    persons = dict(zip(items, item_persons, strict=True))
    return sorted(items, key=lambda item: (-persons[item], item))


def popularity(train: pd.DataFrame) -> list[str]:
    """Items by distinct persons in ``train`` (most first), ties by item name."""
    coded = _Coded.of(train)
    return _ranking(coded.items, _persons_per_item(coded.totals()[1]))


@dataclass(frozen=True)
class AlsModel:
    persons: list[str]
    items: list[str]
    person_factors: np.ndarray
    item_factors: np.ndarray
    user_items: sparse.csr_matrix
    item_persons: np.ndarray  # per item, the persons with an interaction on it

    @cached_property
    def ranking(self) -> list[str]:
        """The popularity baseline's order: :func:`popularity` of the training interactions."""
        return _ranking(self.items, self.item_persons)

    def _blocks(self, rows: np.ndarray):
        """``rows`` in blocks of about a million (person, item) cells, with what they have."""
        block = max(1, 2**20 // len(self.items))
        for start in range(0, len(rows), block):
            chunk = rows[start : start + block]
            yield start, chunk, self.user_items[chunk].toarray() != 0

    def top_items(self, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(item index, score) of the top ``k`` items of the persons at ``rows`` that they do
        not have yet, best first; index -1 (score NaN) where fewer than ``k`` are left.

        Order: score rounded to 6 decimals (highest first), then the more popular item, then
        the item's name.
        """
        pop_rank = {item: r for r, item in enumerate(self.ranking)}
        tie = np.array([pop_rank.get(i, len(pop_rank)) for i in self.items], dtype=float)
        width = min(k, len(self.items))
        best = np.full((len(rows), width), -1)
        best_scores = np.full((len(rows), width), np.nan, dtype=self.item_factors.dtype)
        for start, chunk, have in self._blocks(rows):
            # each person's item_factors @ factors, to the bit (a matrix product rounds otherwise)
            scores = np.matvec(self.item_factors, self.person_factors[chunk])
            primary = np.where(have, np.inf, -np.round(scores, 6))
            names = np.broadcast_to(np.arange(len(self.items)), scores.shape)
            order = np.lexsort((names, np.broadcast_to(tie, scores.shape), primary), axis=-1)
            order = order[:, :width]
            taken = ~np.take_along_axis(have, order, axis=1)
            best[start : start + len(chunk)] = np.where(taken, order, -1)
            best_scores[start : start + len(chunk)] = np.where(
                taken, np.take_along_axis(scores, order, axis=1), np.nan
            )
        return best, best_scores

    def top_popular(self, rows: np.ndarray, k: int) -> np.ndarray:
        """The popularity baseline: item indices of the ``k`` most popular items the persons at
        ``rows`` do not have yet, most popular first; -1 where fewer than ``k`` are left."""
        ranking = pd.Index(self.items).get_indexer(self.ranking)
        width = min(k, len(ranking))
        best = np.full((len(rows), width), -1)
        for start, chunk, have in self._blocks(rows):
            unseen = ~have[:, ranking]
            order = np.argsort(~unseen, axis=1, kind="stable")[:, :width]
            taken = np.take_along_axis(unseen, order, axis=1)
            best[start : start + len(chunk)] = np.where(taken, ranking[order], -1)
        return best


# ALS's settings unless a caller gives others (fit_als, evaluate, user_recommendations).
ALS_PARAMS = {"factors": 16, "regularization": 0.05, "alpha": 10.0, "iterations": 15}


def fit_als(train: pd.DataFrame, seed: int = 0, **als_params) -> AlsModel:
    """Fit ``implicit``'s ALS on summed weights per (person, item) (above
    :data:`ALS_FIT_SAMPLE` persons: on a fixed-seed sample, then every person's factors);
    ``als_params`` override :data:`ALS_PARAMS`."""
    if train.empty:
        raise InsufficientDataError("no training interactions")
    coded = _Coded.of(train)
    return _fit(coded.persons, coded.items, *coded.totals(), seed=seed, **als_params)


def _fit(
    persons: np.ndarray,
    items: np.ndarray,
    weights: sparse.csr_matrix,
    counts: sparse.csr_matrix,
    seed: int = 0,
    **als_params,
) -> AlsModel:
    """:func:`fit_als` on the persons x items sums of :meth:`_Coded.totals`."""
    from implicit.cpu.als import AlternatingLeastSquares

    if len(items) < 2:
        raise InsufficientDataError("fewer than two items: nothing to recommend")
    matrix = weights.astype(np.float32)
    model = AlternatingLeastSquares(
        **{**ALS_PARAMS, **als_params},
        num_threads=1,
        random_state=seed,
        calculate_training_loss=False,
    )
    if len(persons) > ALS_FIT_SAMPLE:
        rows = np.random.default_rng(seed).choice(len(persons), ALS_FIT_SAMPLE, replace=False)
        model.fit(matrix[np.sort(rows)], show_progress=False)
        person_factors = model.recalculate_user(np.arange(len(persons)), matrix)
    else:
        model.fit(matrix, show_progress=False)
        person_factors = model.user_factors
    return AlsModel(
        list(persons),
        list(items),
        np.asarray(person_factors),
        np.asarray(model.item_factors),
        matrix,
        _persons_per_item(counts),
    )


def precision_recall_at_k(
    hits: np.ndarray, relevant: np.ndarray, k: int = 10
) -> tuple[float, float]:
    """Mean precision@k (``hits / k``) and recall@k (``hits / relevant``) over the persons with
    at least one relevant item; ``hits`` counts each person's relevant items in their top k."""
    hits, relevant = np.asarray(hits), np.asarray(relevant)
    counted = relevant > 0
    if not counted.any():
        raise InsufficientDataError("no person has a relevant item")
    return (
        float(np.mean(hits[counted] / k)),
        float(np.mean(hits[counted] / relevant[counted])),
    )


def evaluate(
    interactions: pd.DataFrame,
    k: int = 10,
    cutoff=None,
    holdout_fraction: float = 0.2,
    seed: int = 0,
    **als_params,
) -> dict:
    """Time-split holdout evaluation of ALS and of the popularity baseline.

    Returns a flat dict for asset metadata: ``als_precision_at_k``, ``als_recall_at_k``,
    ``popularity_precision_at_k``, ``popularity_recall_at_k`` (k in the key, e.g. ``_at_10``),
    ``evaluated_persons``, ``train_interactions``, ``test_interactions``, ``items``, ``cutoff``.
    """
    coded = _Coded.of(interactions)
    cutoff = _cutoff(coded.time, cutoff, holdout_fraction)
    before = coded.time < cutoff.to_datetime64()
    weights, counts = coded.totals(before)
    _, counts_after = coded.totals(~before)
    # The model's persons and items: the ones with training interactions, in the same order.
    persons = np.flatnonzero(np.diff(counts.indptr))
    items = np.flatnonzero(_persons_per_item(counts))
    # Relevant: (person, item) pairs used after the cutoff and not before, of persons with
    # training history; as person (the model's row) x every item.
    used_before = (counts[persons] != 0).astype(np.int8)
    new = (((counts_after[persons] != 0).astype(np.int8) - used_before) == 1).tocoo()
    if not new.nnz:
        raise InsufficientDataError("no person with training history has a new item after cutoff")
    pairs = np.sort(new.row.astype(np.int64) * len(coded.items) + new.col)
    relevant = np.bincount(new.row, minlength=len(persons))
    rows = np.flatnonzero(relevant)
    model = _fit(
        coded.persons[persons],
        coded.items[items],
        weights[persons][:, items],
        counts[persons][:, items],
        seed=seed,
        **als_params,
    )

    def hits(best: np.ndarray) -> np.ndarray:
        found = np.isin(rows[:, None] * len(coded.items) + items[best], pairs) & (best >= 0)
        return found.sum(axis=1)

    als_p, als_r = precision_recall_at_k(hits(model.top_items(rows, k)[0]), relevant[rows], k)
    pop_p, pop_r = precision_recall_at_k(hits(model.top_popular(rows, k)), relevant[rows], k)
    return {
        f"als_precision_at_{k}": als_p,
        f"als_recall_at_{k}": als_r,
        f"popularity_precision_at_{k}": pop_p,
        f"popularity_recall_at_{k}": pop_r,
        "evaluated_persons": len(rows),
        "train_interactions": int(before.sum()),
        "test_interactions": int((~before).sum()),
        "items": len(model.items),
        "cutoff": str(cutoff),
    }


def user_recommendations(
    interactions: pd.DataFrame,
    persons: Sequence[str] | None = None,
    k: int = 10,
    seed: int = 0,
    **als_params,
) -> pd.DataFrame:
    """Top-k recommendations for ``persons`` (default: everyone with an interaction), fitted on
    all interactions. Persons without interactions get the popular items (``source`` =
    ``"popular"``, score = number of persons with the item).

    Columns: ``person_id``, ``rank`` (1..k), ``item``, ``score``, ``source`` (``als``|``popular``).
    """
    model = fit_als(interactions, seed=seed, **als_params)
    persons = sorted(model.persons if persons is None else set(persons))
    counts = dict(zip(model.items, model.item_persons, strict=True))
    rows = pd.Index(model.persons).get_indexer(persons)
    known = np.asarray(persons, dtype=object)[rows >= 0]
    best, scores = model.top_items(rows[rows >= 0], k)
    ranks = np.broadcast_to(np.arange(1, best.shape[1] + 1), best.shape)
    found = best >= 0
    als = pd.DataFrame(
        {
            "person_id": np.repeat(known, found.sum(axis=1)),
            "rank": ranks[found],
            "item": np.asarray(model.items, dtype=object)[best[found]],
            "score": scores[found].astype(float),
            "source": "als",
        }
    )
    cold = np.asarray(persons, dtype=object)[rows < 0]
    popular = model.ranking[:k]
    cold_start = pd.DataFrame(
        {
            "person_id": np.repeat(cold, len(popular)),
            "rank": np.tile(np.arange(1, len(popular) + 1), len(cold)),
            "item": np.tile(np.asarray(popular, dtype=object), len(cold)),
            "score": np.tile([float(counts[item]) for item in popular], len(cold)),
            "source": "popular",
        }
    )
    out = pd.concat([als, cold_start], ignore_index=True)
    return out.sort_values(["person_id", "rank"], kind="stable").reset_index(drop=True)
