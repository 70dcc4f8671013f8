"""A/B and multi-variant experiments: the analysis tables, their SRM gate and lift charts
(docs/experiments.md). The person-level data come from dbt (models/intermediate/experiments); the
statistics are plain functions in ml/experiment_analysis.py and ml/experiment_stats.py."""
