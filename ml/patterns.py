"""Frequent event patterns: FP-growth (``mlxtend``) over each person's or session's event set.

A *basket* is the set of distinct event names of one person (or session). For an itemset X and a
rule A -> C over N baskets:

* ``support(X)`` = baskets containing X / N;
* ``confidence(A -> C)`` = support(A and C) / support(A);
* ``lift(A -> C)`` = confidence(A -> C) / support(C): above 1, A and C occur together more often
  than if they were independent.

Itemsets and rules are written as sorted, comma-separated event names so that they fit a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from mlxtend.frequent_patterns import association_rules, fpgrowth

from ml.errors import InsufficientDataError


def baskets(
    events: pd.DataFrame, by: str = "person_id", exclude: Sequence[str] = ()
) -> pd.DataFrame:
    """One boolean row per person (or session, ``by="session_id"``), one column per event name
    (sorted), True when the basket contains that event."""
    ev = events[~events["event_name"].isin(list(exclude))]
    if ev.empty:
        raise InsufficientDataError("no events to build baskets from")
    onehot = pd.crosstab(ev[by], ev["event_name"]) > 0
    return onehot.sort_index().sort_index(axis=1).astype(bool)


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
) -> Patterns:
    """Frequent itemsets (support >= ``min_support``) and the rules among them with confidence
    >= ``min_confidence``; sorted by support (itemsets) and lift then confidence (rules)."""
    if basket_frame.empty:
        raise InsufficientDataError("no baskets")
    found = fpgrowth(basket_frame, min_support=min_support, use_colnames=True, max_len=max_len)
    item_cols = ["itemset", "items", "support"]
    rule_cols = ["antecedents", "consequents", "support", "confidence", "lift"]
    if found.empty:
        return Patterns(
            pd.DataFrame(columns=item_cols),
            pd.DataFrame(columns=rule_cols),
            len(basket_frame),
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
                num_itemsets=len(basket_frame),
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
    return Patterns(itemsets, rules, len(basket_frame), reason)
