"""Conversion prediction: will a person complete the funnel, judged from their first day?

Two models from scikit-learn on the same features (:func:`ml.features.first_day_features`):

* **Logistic regression** on standardised numeric features and one-hot categorical ones (L2,
  ``C=1``, class weights balanced). Its coefficients are per standard deviation (numeric) or
  per membership (one-hot), in log-odds; ``odds_ratio = exp(coefficient)``.
* **Decision tree** (depth <= 4, at least 20 persons per leaf, fixed seed); feature importances are
  the normalised total impurity (Gini) decrease each feature brings.

Both are fitted on a stratified, fixed-seed split and scored on the held-out part with the
**ROC AUC**: the probability that a random converter scores above a random non-converter (0.5 is
chance, 1.0 perfect).

**Clearly above chance** (:func:`auc_clearly_above_chance`): the lower end of the AUC's
two-sided ``1 - alpha`` confidence interval is above ``0.5 + margin``. The interval is
``auc +- z x SE`` with the Hanley-McNeil (1982) standard error
``SE^2 = (A(1-A) + (n1-1)(Q1-A^2) + (n0-1)(Q2-A^2)) / (n1 n0)``, ``Q1 = A/(2-A)``,
``Q2 = 2A^2/(1+A)``, where n1 and n0 count the held-out positives and negatives.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier

from ml.errors import InsufficientDataError

NUMERIC = (
    "funnel_steps",
    "events",
    "sessions",
    "distinct_events",
    "errors",
    "help_views",
    "active_minutes",
)
CATEGORICAL = ("platform", "country", "channel")


def auc_confidence_interval(
    auc: float, n_positive: int, n_negative: int, alpha: float = 0.05
) -> tuple[float, float]:
    """Two-sided ``1 - alpha`` interval for an AUC (Hanley-McNeil standard error), clipped to
    [0, 1]."""
    if not 0 <= auc <= 1:
        raise ValueError("auc must be in [0, 1]")
    if n_positive < 1 or n_negative < 1:
        raise InsufficientDataError("an AUC needs at least one positive and one negative")
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (
        auc * (1 - auc) + (n_positive - 1) * (q1 - auc**2) + (n_negative - 1) * (q2 - auc**2)
    ) / (n_positive * n_negative)
    half = stats.norm.ppf(1 - alpha / 2) * math.sqrt(max(var, 0.0))
    return float(max(0.0, auc - half)), float(min(1.0, auc + half))


def auc_clearly_above_chance(
    auc: float, n_positive: int, n_negative: int, alpha: float = 0.05, margin: float = 0.0
) -> bool:
    """True when the lower bound of the AUC's confidence interval exceeds ``0.5 + margin``."""
    return auc_confidence_interval(auc, n_positive, n_negative, alpha)[0] > 0.5 + margin


def design_matrix(
    frame: pd.DataFrame, numeric: Sequence[str] = NUMERIC, categorical: Sequence[str] = CATEGORICAL
) -> pd.DataFrame:
    """Numeric columns as floats and categorical ones one-hot (``col=value``, sorted)."""
    parts = [frame[list(numeric)].astype(float)]
    for col in categorical:
        values = frame[col].fillna("unknown").astype(str)
        for level in sorted(values.unique()):
            parts.append((values == level).astype(float).rename(f"{col}={level}"))
    return pd.concat(parts, axis=1)


@dataclass(frozen=True)
class ConversionModels:
    """``metrics``: flat dict for asset metadata (AUCs, their intervals, sizes, base rate).
    ``coefficients``: feature, coefficient, odds_ratio (logistic regression, largest |coef|
    first). ``importances``: feature, importance (decision tree, largest first).
    ``predictions``: person_id, split (train|test), converted, p_logistic, p_tree."""

    metrics: dict
    coefficients: pd.DataFrame
    importances: pd.DataFrame
    predictions: pd.DataFrame


def train_conversion_models(
    features: pd.DataFrame,
    label: str = "converted",
    numeric: Sequence[str] = NUMERIC,
    categorical: Sequence[str] = CATEGORICAL,
    test_size: float = 0.3,
    seed: int = 0,
    alpha: float = 0.05,
) -> ConversionModels:
    """Fit both models on a stratified split of ``features`` (one row per person with
    ``person_id``, the feature columns and a 0/1 ``label``) and score them on the held-out part.

    Raises :class:`InsufficientDataError` when the label has one class only or either class has
    fewer than 5 persons (a held-out AUC would mean nothing).
    """
    data = features.sort_values("person_id", kind="stable").reset_index(drop=True)
    y = data[label].astype(int).to_numpy()
    counts = np.bincount(y, minlength=2)
    if len(counts) > 2:
        raise ValueError(f"{label} must be 0/1")
    if counts.min() < 5:
        raise InsufficientDataError(
            f"{label} has {counts[1]} positives and {counts[0]} negatives; need 5 of each"
        )
    x = design_matrix(data, numeric, categorical)
    idx_train, idx_test = train_test_split(
        np.arange(len(data)), test_size=test_size, stratify=y, random_state=seed
    )
    mean = x.iloc[idx_train].mean()
    std = x.iloc[idx_train].std(ddof=0).replace(0, 1.0)
    scaled = x.copy()
    scaled[list(numeric)] = (x[list(numeric)] - mean[list(numeric)]) / std[list(numeric)]
    logit = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000)
    logit.fit(scaled.iloc[idx_train], y[idx_train])
    tree = DecisionTreeClassifier(max_depth=4, min_samples_leaf=20, random_state=seed)
    tree.fit(x.iloc[idx_train], y[idx_train])
    p_logit = logit.predict_proba(scaled)[:, 1]
    p_tree = tree.predict_proba(x)[:, 1]
    y_test = y[idx_test]
    n_pos, n_neg = int(y_test.sum()), int(len(y_test) - y_test.sum())
    metrics: dict = {
        "train_persons": len(idx_train),
        "test_persons": len(idx_test),
        "test_positives": n_pos,
        "test_negatives": n_neg,
        "base_rate": float(y.mean()),
    }
    for name, p in (("logistic", p_logit), ("tree", p_tree)):
        auc = float(roc_auc_score(y_test, p[idx_test]))
        low, high = auc_confidence_interval(auc, n_pos, n_neg, alpha)
        metrics |= {
            f"{name}_auc": auc,
            f"{name}_auc_low": low,
            f"{name}_auc_high": high,
            f"{name}_clearly_above_chance": bool(low > 0.5),
        }
    coefficients = pd.DataFrame({"feature": x.columns, "coefficient": logit.coef_[0]})
    coefficients["odds_ratio"] = np.exp(coefficients["coefficient"])
    coefficients = coefficients.reindex(
        coefficients["coefficient"].abs().sort_values(ascending=False, kind="stable").index
    ).reset_index(drop=True)
    importances = pd.DataFrame({"feature": x.columns, "importance": tree.feature_importances_})
    importances = importances.sort_values(
        ["importance", "feature"], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)
    split = np.full(len(data), "train", dtype=object)
    split[idx_test] = "test"
    predictions = pd.DataFrame(
        {
            "person_id": data["person_id"],
            "split": split,
            "converted": y,
            "p_logistic": p_logit,
            "p_tree": p_tree,
        }
    )
    return ConversionModels(metrics, coefficients, importances, predictions)
