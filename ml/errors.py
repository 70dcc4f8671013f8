"""The one exception the model code raises for valid-but-unusable input."""

from __future__ import annotations


class InsufficientDataError(ValueError):
    """The input is well formed but cannot support the model: no dropped persons at a step, one
    class only, fewer rows than clusters, an empty holdout. The message says which.

    Models raise this instead of returning a made-up number (an AUC of 0.0, an empty frame that
    looks like a result); the Dagster assets turn it into a failed check or an explicit skip.
    """
