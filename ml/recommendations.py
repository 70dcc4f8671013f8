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

import numpy as np
import pandas as pd
from scipy import sparse

from ml.errors import InsufficientDataError

DEFAULT_WEIGHTS: Mapping[str, float] = {
    "view_dashboard": 1.0,
    "create_report": 3.0,
    "export_csv": 3.0,
    "share_dashboard": 3.0,
    "use_integration": 3.0,
}


def interactions_from_events(
    events: pd.DataFrame,
    weights: Mapping[str, float] = DEFAULT_WEIGHTS,
    item_property: str | None = None,
) -> pd.DataFrame:
    """Weighted interactions: ``person_id``, ``item``, ``event_time``, ``weight``.

    Only events named in ``weights`` count. The item is the event name, or, with
    ``item_property``, that key of the JSON ``properties`` (e.g. a product id on view / add /
    purchase events weighted 1 / 3 / 5); events without it are skipped.
    """
    ev = events[events["event_name"].isin(list(weights))]
    out = pd.DataFrame(
        {
            "person_id": ev["person_id"].to_numpy(),
            "event_time": pd.to_datetime(ev["event_time"]).to_numpy(),
            "weight": ev["event_name"].map(weights).astype(float).to_numpy(),
        }
    )
    if item_property is None:
        out["item"] = ev["event_name"].to_numpy()
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
    if interactions.empty:
        raise InsufficientDataError("no interactions")
    times = pd.to_datetime(interactions["event_time"])
    if cutoff is None:
        if not 0 < holdout_fraction < 1:
            raise ValueError("holdout_fraction must be in (0, 1)")
        cutoff = times.sort_values().iloc[int(len(times) * (1 - holdout_fraction))]
    cutoff = pd.Timestamp(cutoff)
    return interactions[times < cutoff], interactions[times >= cutoff], cutoff


def popularity(train: pd.DataFrame) -> list[str]:
    """Items by distinct persons in ``train`` (most first), ties by item name."""
    counts = train.groupby("item")["person_id"].nunique()
    return sorted(counts.index, key=lambda i: (-counts[i], i))


def recommend_popular(
    ranking: Sequence[str], seen: Mapping[str, set], persons: Sequence[str], k: int = 10
) -> dict[str, list[str]]:
    """The ``k`` most popular items each person does not have yet."""
    return {p: [i for i in ranking if i not in seen.get(p, set())][:k] for p in persons}


@dataclass(frozen=True)
class AlsModel:
    persons: list[str]
    items: list[str]
    person_factors: np.ndarray
    item_factors: np.ndarray
    user_items: sparse.csr_matrix
    ranking: list[str]

    def recommend(self, persons: Sequence[str], k: int = 10) -> dict[str, list[tuple[str, float]]]:
        """Top ``k`` (item, score) per known person, excluding items they have. Unknown persons
        get an empty list (use :func:`recommend_popular` for them)."""
        index = {p: i for i, p in enumerate(self.persons)}
        pop_rank = {item: r for r, item in enumerate(self.ranking)}
        tie = np.array([pop_rank.get(i, len(pop_rank)) for i in self.items], dtype=float)
        out = {}
        for person in persons:
            row = index.get(person)
            if row is None:
                out[person] = []
                continue
            scores = self.item_factors @ self.person_factors[row]
            have = set(self.user_items[row].indices)
            order = np.lexsort((np.array(self.items), tie, -np.round(scores, 6)))
            out[person] = [(self.items[j], float(scores[j])) for j in order if j not in have][:k]
        return out


def fit_als(
    train: pd.DataFrame,
    factors: int = 16,
    regularization: float = 0.05,
    alpha: float = 10.0,
    iterations: int = 15,
    seed: int = 0,
) -> AlsModel:
    """Fit ``implicit``'s ALS on summed weights per (person, item)."""
    from implicit.cpu.als import AlternatingLeastSquares

    if train.empty:
        raise InsufficientDataError("no training interactions")
    summed = train.groupby(["person_id", "item"], sort=True)["weight"].sum().reset_index()
    persons = sorted(summed["person_id"].unique())
    items = sorted(summed["item"].unique())
    if len(items) < 2:
        raise InsufficientDataError("fewer than two items: nothing to recommend")
    p_index = {p: i for i, p in enumerate(persons)}
    i_index = {it: i for i, it in enumerate(items)}
    matrix = sparse.csr_matrix(
        (
            summed["weight"].to_numpy(dtype=np.float32),
            (summed["person_id"].map(p_index).to_numpy(), summed["item"].map(i_index).to_numpy()),
        ),
        shape=(len(persons), len(items)),
    )
    model = AlternatingLeastSquares(
        factors=factors,
        regularization=regularization,
        alpha=alpha,
        iterations=iterations,
        num_threads=1,
        random_state=seed,
        calculate_training_loss=False,
    )
    model.fit(matrix, show_progress=False)
    return AlsModel(
        persons,
        items,
        np.asarray(model.user_factors),
        np.asarray(model.item_factors),
        matrix,
        popularity(train),
    )


def precision_recall_at_k(
    recommended: Mapping[str, Sequence[str]], relevant: Mapping[str, set], k: int = 10
) -> tuple[float, float]:
    """Mean precision@k and recall@k over the persons in ``relevant`` with at least one item."""
    persons = [p for p, items in relevant.items() if items]
    if not persons:
        raise InsufficientDataError("no person has a relevant item")
    precision, recall = [], []
    for p in persons:
        hits = len(set(list(recommended.get(p, []))[:k]) & relevant[p])
        precision.append(hits / k)
        recall.append(hits / len(relevant[p]))
    return float(np.mean(precision)), float(np.mean(recall))


def _seen(frame: pd.DataFrame) -> dict[str, set]:
    return {p: set(g) for p, g in frame.groupby("person_id")["item"]}


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
    train, test, cutoff = time_split(interactions, cutoff, holdout_fraction)
    seen = _seen(train)
    relevant = {p: items - seen.get(p, set()) for p, items in _seen(test).items() if p in seen}
    relevant = {p: items for p, items in relevant.items() if items}
    if not relevant:
        raise InsufficientDataError("no person with training history has a new item after cutoff")
    model = fit_als(train, seed=seed, **als_params)
    persons = sorted(relevant)
    als = {p: [i for i, _ in recs] for p, recs in model.recommend(persons, k).items()}
    pop = recommend_popular(model.ranking, seen, persons, k)
    als_p, als_r = precision_recall_at_k(als, relevant, k)
    pop_p, pop_r = precision_recall_at_k(pop, relevant, k)
    return {
        f"als_precision_at_{k}": als_p,
        f"als_recall_at_{k}": als_r,
        f"popularity_precision_at_{k}": pop_p,
        f"popularity_recall_at_{k}": pop_r,
        "evaluated_persons": len(persons),
        "train_interactions": len(train),
        "test_interactions": len(test),
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
    counts = interactions.groupby("item")["person_id"].nunique()
    known = set(model.persons)
    rows = []
    for person, recs in model.recommend([p for p in persons if p in known], k).items():
        rows += [(person, r + 1, item, score, "als") for r, (item, score) in enumerate(recs)]
    for person in (p for p in persons if p not in known):
        rows += [
            (person, r + 1, item, float(counts[item]), "popular")
            for r, item in enumerate(model.ranking[:k])
        ]
    out = pd.DataFrame(rows, columns=["person_id", "rank", "item", "score", "source"])
    return out.sort_values(["person_id", "rank"], kind="stable").reset_index(drop=True)
