"""The vectorized demo generator at a scale the per-person loop could not reach, and the vectorized
normalize against the per-value rules it must agree with."""

import time
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from orchestration.ingest import contract
from orchestration.ingest.demo import DemoConfig, DemoSource, event_count, generate


def test_day_slices_are_deterministic_and_carry_the_planted_findings():
    cfg = DemoConfig(persons=50_000, days=14, seed=11)
    source = DemoSource(cfg)
    began = time.time()
    total = event_count(cfg)
    assert time.time() - began < 30
    day = cfg.start + timedelta(days=5)
    a = source.fetch_day(day)
    assert a.equals(DemoSource(DemoConfig(persons=50_000, days=14, seed=11)).fetch_day(day))
    assert sum(len(source.fetch_table(d)) for d in source.available_days()) == total
    frame = pd.concat([source.fetch_day(d) for d in source.available_days()], ignore_index=True)
    reached = frame.groupby(["anonymous_id", "platform"])["event_name"].agg(set).reset_index()
    verified = reached[reached.event_name.map(lambda s: "verify_email" in s)]
    created = verified.event_name.map(lambda s: "create_project" in s)
    assert (
        created[verified.platform == "android"].mean()
        < 0.40
        < 0.65
        < created[verified.platform != "android"].mean()
    )
    assert 0.005 < frame["event_id"].duplicated().mean() < 0.02, "about 1% exact re-sends"


def _per_value(records: pd.DataFrame) -> pd.DataFrame:
    """The contract's per-value rules applied record by record (the reference)."""
    rows = []
    for r in records.to_dict("records"):
        t = contract.parse_event_time(r.get("event_time"))
        p = contract.parse_properties(r.get("properties"))
        rows.append(
            {
                "event_id": contract._clean_text(r.get("event_id")),
                "user_id": contract._clean_text(r.get("user_id")),
                "event_name": contract._clean_text(r.get("event_name")),
                "event_time": pd.Timestamp(t).tz_localize(None) if t else pd.NaT,
                "properties": contract._to_json(p) if p is not None else None,
            }
        )
    return pd.DataFrame(rows)


def test_vectorized_normalize_agrees_with_the_per_value_rules():
    records = pd.DataFrame(
        {
            "event_id": ["e1", " e2 ", None, "e4", "e5", "e6"],
            "event_name": ["a", "b", "c", "  ", None, "f"],
            "event_time": [
                "2026-09-03T10:00:00Z",
                "2026-09-03 12:00:00+02:00",
                "Sep 3 2026 10:00",
                "2026-09-03T25:61:00",
                "",
                "2026-09-03T10:00:00.123456Z",
            ],
            "user_id": ["u", "\u2003u2\x1c", None, "u", "u", "u"],
            "properties": ['{"b": 1, "a": 2}', "[1]", None, "{bad", '{"x": "é"}', ""],
        }
    )
    landed = contract.normalize(records, source="file", fetch_day=None)
    expected = _per_value(records)

    def values(series):
        return [None if pd.isna(v) else v for v in series.tolist()]

    for column in ("user_id", "event_name", "properties"):
        assert values(landed[column]) == values(expected[column]), column
    assert landed["event_id"].iloc[[0, 1, 3]].tolist() == ["e1", "e2", "e4"]
    assert landed["event_id"].iloc[2].startswith("derived-")
    pd.testing.assert_series_equal(
        landed["event_time"], expected["event_time"].astype("datetime64[us]"), check_names=False
    )
    assert np.array_equal(
        landed["quarantine_reason"].isna().to_numpy(), [True, False, False, False, False, True]
    )


def test_generate_matches_the_day_slices():
    cfg = DemoConfig(persons=300, days=4, seed=5)
    whole = generate(cfg)
    day = cfg.start + timedelta(days=2)
    pd.testing.assert_frame_equal(
        whole[whole["day"] == day].drop(columns="day").reset_index(drop=True),
        DemoSource(cfg).fetch_day(day),
    )


def test_event_times_are_utc_iso_strings_with_milliseconds():
    """The day's times are formatted by an Arrow cast (not strftime, which cost most of a fetch at
    1M persons): the exact text must stay `YYYY-MM-DDTHH:MM:SS.mmm+00:00`, the instant in UTC."""
    import pyarrow as pa
    import pyarrow.compute as pc

    cfg = DemoConfig(persons=2_000, days=3, seed=5)
    table = DemoSource(cfg).fetch_table(cfg.start + timedelta(days=1)).to_pandas()
    good = table[~table["event_id"].str.startswith("bad-")]["event_time"]
    assert len(good) > 100
    assert good.str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00").all()
    parsed = pd.to_datetime(good, format="ISO8601", utc=True)
    utc = pa.array(parsed.dt.as_unit("ms").astype("int64").to_numpy(), pa.timestamp("ms", "UTC"))
    reference = pc.strftime(utc, format="%Y-%m-%dT%H:%M:%S").to_pylist()  # the old formatting
    assert [f"{r}+00:00" for r in reference] == good.tolist()


def test_activity_multiplies_return_visits_feature_uses_and_leaves_onboarding_as_it_was():
    """``DEMO_ACTIVITY`` (the benchmark's volume knob): at 10 a return visit has ten times the
    feature uses, and onboarding, where every planted finding lives, is the same event for event."""
    from orchestration.ingest.demo import FEATURES, FUNNEL

    base, busy = (DemoConfig(persons=5_000, days=30, seed=3, activity=a) for a in (1.0, 10.0))
    frames = {cfg.activity: generate(cfg) for cfg in (base, busy)}
    onboarding = {
        activity: frame[frame["event_name"].isin(("page_view", *FUNNEL, "error", "view_help"))]
        .loc[:, ["anonymous_id", "user_id", "event_name", "event_time", "properties"]]
        .drop_duplicates()  # the ~1% re-sends are drawn from all events, so they differ
        .sort_values(["anonymous_id", "event_time", "event_name"])
        .reset_index(drop=True)
        for activity, frame in frames.items()
    }
    pd.testing.assert_frame_equal(onboarding[1.0], onboarding[10.0])
    uses = {a: f["event_name"].isin(FEATURES).sum() for a, f in frames.items()}
    assert 8 < uses[10.0] / uses[1.0] < 12, uses
    assert DemoConfig.from_env({"DEMO_ACTIVITY": "27"}).activity == 27.0
    with pytest.raises(ValueError, match="DEMO_ACTIVITY must be above 0"):
        DemoConfig(activity=0)
