"""Behaviour assets computed in Python: the revenue impact of features (docs/behaviour.md)."""
