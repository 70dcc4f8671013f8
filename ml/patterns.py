"""Frequent event patterns: frequent itemsets and association rules (``mlxtend``) over each
person's or session's event set.

A *basket* is the set of distinct event names of one person (or session). For an itemset X and a
rule A -> C over N baskets:

* ``support(X)`` = baskets containing X / N;
* ``confidence(A -> C)`` = support(A and C) / support(A);
* ``lift(A -> C)`` = confidence(A -> C) / support(C): above 1, A and C occur together more often
  than if they were independent.

Itemsets and rules are written as sorted, comma-separated event names so that they fit a table.

The frequent itemsets are exactly those ``mlxtend``'s FP-growth finds, with the same supports
(``tests/test_ml_units.py`` holds the two side by side), but counted over the *distinct* baskets,
each weighted by how many persons have it: a million persons share about a hundred event sets,
and FP-growth inserts every basket into its tree in Python. Candidates grow one item at a time
from frequent ones (an itemset is only as frequent as its rarest subset).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from mlxtend.frequent_patterns import association_rules

from ml.errors import InsufficientDataError


def baskets(
    events: pd.DataFrame, by: str = "person_id", exclude: Sequence[str] = ()
) -> pd.DataFrame:
    """One boolean row per person (or session, ``by="session_id"``), one column per event name
    (sorted), True when the basket contains that event."""
    ev = events[~events["event_name"].isin(list(exclude))]
    ev = ev[ev[by].notna()]
    if ev.empty:
        raise InsufficientDataError("no events to build baskets from")
    basket, basket_ids = pd.factorize(ev[by], sort=True)
    name, names = pd.factorize(ev["event_name"], sort=True)
    onehot = np.zeros((len(basket_ids), len(names)), dtype=bool)
    onehot[basket, name] = True
    return pd.DataFrame(
        onehot,
        index=pd.Index(basket_ids, name=by),
        columns=pd.Index(names, name="event_name"),
    )


def frequent_itemsets(
    basket_frame: pd.DataFrame,
    min_support: float,
    max_len: int | None = None,
    weights: np.ndarray | None = None,
) -> pd.DataFrame:
    """``support`` and ``itemsets`` (frozensets of column names) of every itemset of at most
    ``max_len`` items in at least ``min_support`` of the baskets, each row of ``basket_frame``
    standing for ``weights`` baskets (default 1): the frame ``mlxtend.frequent_patterns.fpgrowth(
    basket_frame, min_support, use_colnames=True, max_len=max_len)`` returns for the baskets
    written out, up to row order, with the same supports to the bit."""
    if not 0 < min_support <= 1:
        raise ValueError(f"min_support must be in (0, 1], got {min_support}")
    matrix = basket_frame.to_numpy(dtype=bool)
    weights = np.ones(len(matrix), dtype=np.int64) if weights is None else np.asarray(weights)
    # the distinct baskets, each with the number of baskets it stands for
    packed = np.packbits(matrix, axis=1)
    keys = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    distinct = matrix[first]
    weight = np.bincount(inverse.ravel(), weights=weights, minlength=len(first)).astype(np.int64)
    total = int(weights.sum())
    # fpgrowth's two thresholds: items by support, larger itemsets by count
    min_count = math.ceil(min_support * total)
    counts = weight @ distinct
    items = [i for i in range(matrix.shape[1]) if counts[i] / float(total) >= min_support]
    found = {(i,): int(counts[i]) for i in items}
    level = list(found)
    while level and (max_len is None or len(level[0]) < max_len):
        frequent = set(level)
        candidates = [
            (*a, b)
            for a in level
            for b in items
            if b > a[-1] and all((*a[:j], *a[j + 1 :], b) in frequent for j in range(len(a)))
        ]
        level = []
        for candidate in candidates:
            count = int(weight @ distinct[:, list(candidate)].all(axis=1))
            if count >= min_count and count / float(total) >= min_support:
                found[candidate] = count
                level.append(candidate)
    columns = basket_frame.columns
    return pd.DataFrame(
        {
            "support": [count / float(total) for count in found.values()],
            "itemsets": [frozenset(columns[list(itemset)]) for itemset in found],
        }
    )


@dataclass(frozen=True)
class Patterns:
    """``itemsets``: itemset, items (count), support. ``rules``: antecedents, consequents,
    support, confidence, lift. ``reason`` is None, or says why a frame is empty."""

    itemsets: pd.DataFrame
    rules: pd.DataFrame
    baskets: int
    reason: str | None = None


def _join(items) -> str:
    return ", ".join(sorted(items))


def frequent_patterns(
    basket_frame: pd.DataFrame,
    min_support: float = 0.05,
    min_confidence: float = 0.5,
    max_len: int | None = 4,
    weights: np.ndarray | None = None,
) -> Patterns:
    """Frequent itemsets (support >= ``min_support``) and the rules among them with confidence
    >= ``min_confidence``; sorted by support (itemsets) and lift then confidence (rules). Each
    row of ``basket_frame`` stands for ``weights`` baskets (default 1), e.g. the distinct event
    sets with how many persons have each."""
    if basket_frame.empty:
        raise InsufficientDataError("no baskets")
    found = frequent_itemsets(basket_frame, min_support, max_len, weights)
    n_baskets = len(basket_frame) if weights is None else int(np.sum(weights))
    item_cols = ["itemset", "items", "support"]
    rule_cols = ["antecedents", "consequents", "support", "confidence", "lift"]
    if found.empty:
        return Patterns(
            pd.DataFrame(columns=item_cols),
            pd.DataFrame(columns=rule_cols),
            n_baskets,
            f"no itemset reaches support {min_support}",
        )
    itemsets = (
        pd.DataFrame(
            {
                "itemset": found["itemsets"].map(_join),
                "items": found["itemsets"].map(len),
                "support": found["support"].astype(float),
            }
        )
        .sort_values(["support", "items", "itemset"], ascending=[False, True, True], kind="stable")
        .reset_index(drop=True)
    )
    reason = None
    if (found["itemsets"].map(len) > 1).any():
        # mlxtend also computes certainty scores we do not use; their 0/0 is not our problem
        with np.errstate(divide="ignore", invalid="ignore"):
            raw = association_rules(
                found,
                num_itemsets=n_baskets,
                metric="confidence",
                min_threshold=min_confidence,
            )
    else:
        raw = pd.DataFrame()
    if raw.empty:
        rules = pd.DataFrame(columns=rule_cols)
        reason = f"no rule reaches confidence {min_confidence}"
    else:
        rules = (
            pd.DataFrame(
                {
                    "antecedents": raw["antecedents"].map(_join),
                    "consequents": raw["consequents"].map(_join),
                    "support": raw["support"].astype(float),
                    "confidence": raw["confidence"].astype(float),
                    "lift": raw["lift"].astype(float),
                }
            )
            .sort_values(
                ["lift", "confidence", "antecedents", "consequents"],
                ascending=[False, False, True, True],
                kind="stable",
            )
            .reset_index(drop=True)
        )
    return Patterns(itemsets, rules, n_baskets, reason)
