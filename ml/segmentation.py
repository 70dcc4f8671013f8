"""User segmentation: k-means on lifetime activity (:func:`ml.features.activity_features`).

Features: events, sessions, active days, conversion (0/1) and revenue, each ``log1p``-compressed
(except the 0/1 conversion) and standardised; k chosen by silhouette over ``k_range`` with fixed
seeds (see :mod:`ml.clustering`). Each segment's profile is the mean of every feature, its size
and share, and a plain-words name built from how its means compare with everyone's: a feature is
"high" at 1.5 times the overall mean or more and "low" at two thirds of it or less.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from ml.clustering import choose_k, scale_features
from ml.errors import InsufficientDataError

FEATURES = ("events", "sessions", "active_days", "converted", "revenue")
LOG_FEATURES = ("events", "sessions", "active_days", "revenue")
WORDS = {
    "revenue": ("paying", None),
    "converted": ("onboarded", "not onboarded"),
    "events": ("heavy", "light"),
    "active_days": ("returning", "one-off"),
    "sessions": ("multi-session", None),
}


@dataclass(frozen=True)
class Segmentation:
    """``segments``: person_id, segment. ``profiles``: segment, name, persons, share and
    ``mean_<feature>`` per feature (segment 0 is the largest). ``silhouette`` of the chosen k and
    ``silhouette_by_k`` for every k tried."""

    segments: pd.DataFrame
    profiles: pd.DataFrame
    k: int
    silhouette: float
    silhouette_by_k: dict[int, float]


def segment_name(means: pd.Series, overall: pd.Series) -> str:
    """Plain words for a segment's means against the overall means (see module docstring)."""
    words = []
    for feature, (high, low) in WORDS.items():
        ratio = means[feature] / overall[feature] if overall[feature] > 0 else 1.0
        if high and ratio >= 1.5:
            words.append(high)
        elif low and ratio <= 2 / 3:
            words.append(low)
    return " ".join(words) + " users" if words else "typical users"


def segment_users(
    activity: pd.DataFrame,
    features: Sequence[str] = FEATURES,
    k_range: Sequence[int] = range(2, 7),
    seed: int = 0,
) -> Segmentation:
    """Segment the persons in ``activity`` (person_id plus ``features``).

    Raises :class:`InsufficientDataError` when there are too few distinct persons for any k.
    """
    data = activity.sort_values("person_id", kind="stable").reset_index(drop=True)
    if len(data) < 3:
        raise InsufficientDataError(f"{len(data)} persons are too few to segment")
    x, _ = scale_features(data, features, log_columns=[f for f in features if f in LOG_FEATURES])
    fit = choose_k(x, k_range, seed)
    segments = pd.DataFrame({"person_id": data["person_id"], "segment": fit.labels})
    overall = data[list(features)].mean()
    rows = []
    for s in range(fit.k):
        members = data[fit.labels == s]
        means = members[list(features)].mean()
        rows.append(
            {
                "segment": s,
                "name": segment_name(means, overall),
                "persons": len(members),
                "share": len(members) / len(data),
                **{f"mean_{f}": float(means[f]) for f in features},
            }
        )
    return Segmentation(segments, pd.DataFrame(rows), fit.k, fit.silhouette, fit.silhouette_by_k)
