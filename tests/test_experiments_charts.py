"""The lift chart draws each variant's lift and 95% CI from the results it is given."""

import pandas as pd
import pytest

from ml.experiment_analysis import MetricSpec, analyze_experiment
from orchestration.experiments.charts import drawn_lifts, lift_figure
from orchestration.reporting.charts import markdown_image, to_png


def test_lift_chart_draws_every_estimable_interval():
    rows = [
        {"person_id": f"{v}{i}", "metric_name": "activated", "variant": v, "value": float(i < k),
         "is_complete": True}
        for v, k in (("control", 20), ("b", 35), ("c", 18))
        for i in range(100)
    ] + [{"person_id": "e0", "metric_name": "activated", "variant": "empty", "value": 1.0,
          "is_complete": False}]  # fmt: skip
    results = analyze_experiment(
        pd.DataFrame(rows),
        experiment="e",
        control="control",
        metrics=[MetricSpec("activated", "conversion")],
        variants=["control", "b", "c", "empty"],
    )
    figure = lift_figure(results, "e")
    (panel,) = drawn_lifts(figure)
    treated = results[~results["is_control"].astype(bool) & results["ci_low"].notna()]
    expected = list(
        zip(treated["absolute_lift"], treated["ci_low"], treated["ci_high"], strict=True)
    )
    assert [pytest.approx(drawn) for drawn in panel] == expected
    assert markdown_image(to_png(figure), "e").startswith("![e](data:image/png;base64,")
