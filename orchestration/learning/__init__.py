"""Learning on the marts: friction clusters, UX and feature recommendations, conversion
prediction, user segments and event patterns. The model math is in ``ml/``; this package reads
the marts, calls it, writes the results back to DuckDB and gates them with blocking checks."""
