"""The file source and the demo generator."""

import json
from datetime import date

import pandas as pd
import pytest

from orchestration.ingest.contract import normalize
from orchestration.ingest.demo import (
    FUNNEL,
    DemoConfig,
    DemoSource,
    StepRates,
    expected_activation_rate,
    generate,
)
from orchestration.ingest.files import MALFORMED_LINE, FileSource
from orchestration.ingest.sources import SourceConfigError, build_source

RECORDS = [
    {"event_id": "1", "event_name": "signup", "event_time": "2026-09-01T23:59:59Z",
     "user_id": "u1"},
    {"event_id": "2", "event_name": "activate", "event_time": "2026-09-02T00:00:00Z",
     "user_id": "u1"},
    {"event_id": "3", "event_name": "activate", "event_time": "2026-09-01T22:30:00-03:00",
     "anonymous_id": "a1", "properties": {"plan": "pro"}},
]


def test_jsonl_records_go_to_their_utc_day_and_bad_lines_are_kept(tmp_path):
    path = tmp_path / "events.jsonl"
    lines = [json.dumps(r) for r in RECORDS] + ["{not json", "[1, 2]", ""]
    path.write_text("\n".join(lines) + "\n")
    source = FileSource(path)
    assert source.available_days() == [date(2026, 9, 1), date(2026, 9, 2)]
    first = source.fetch_day(date(2026, 9, 1))
    second = source.fetch_day(date(2026, 9, 2))
    # 23:59:59Z on the 1st; midnight and 22:30-03:00 (01:30Z) on the 2nd; bad lines on the first
    # day.
    assert sorted(first["event_id"].dropna()) == ["1"]
    assert sorted(second["event_id"]) == ["2", "3"]
    reasons = first["quarantine_reason"].dropna().tolist()
    assert len(reasons) == 2 and all(r.startswith(MALFORMED_LINE) for r in reasons)
    landed = normalize(first, source="file", fetch_day=date(2026, 9, 1))
    bad = landed.loc[landed.quarantine_reason.notna(), "raw_record"]
    assert set(bad) == {"{not json", "[1, 2]"}


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_csv_and_parquet(tmp_path, suffix):
    frame = pd.DataFrame(RECORDS).assign(properties=lambda f: f.properties.map(
        lambda p: json.dumps(p) if isinstance(p, dict) else None))
    path = tmp_path / f"events{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    source = FileSource(tmp_path)
    day = date(2026, 9, 2)
    landed = normalize(source.fetch_day(day), source="file", fetch_day=day)
    assert sorted(landed["event_id"]) == ["2", "3"]
    assert landed["quarantine_reason"].isna().all()
    assert landed.set_index("event_id").loc["3", "properties"] == '{"plan":"pro"}'


def test_source_selection_errors(tmp_path):
    with pytest.raises(SourceConfigError, match="ANALYTICS_SOURCE_PATH"):
        build_source({"ANALYTICS_SOURCE": "file"})
    with pytest.raises(SourceConfigError, match="unknown ANALYTICS_SOURCE"):
        build_source({"ANALYTICS_SOURCE": "nope"})
    with pytest.raises(FileNotFoundError):
        FileSource(tmp_path / "missing").available_days()


SMALL = DemoConfig(persons=600, days=14, seed=7)


def test_demo_is_deterministic_and_seeded():
    a = generate(SMALL)
    generate.cache_clear()
    b = generate(DemoConfig(persons=600, days=14, seed=7))
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(generate(DemoConfig(persons=600, days=14, seed=8)))


def test_demo_days_cover_the_range_and_hold_bad_records():
    source = DemoSource(SMALL)
    days = source.available_days()
    assert days[0] == SMALL.start and len(days) == 14
    day = source.fetch_day(days[3])
    landed = normalize(day, source="demo", fetch_day=days[3])
    assert set(landed["quarantine_reason"].dropna()) == {
        "missing event_name", "unparseable event_time", "missing user_id and anonymous_id"}
    assert landed["event_id"].duplicated().any(), "exact re-sends are planted"
    times = landed["event_time"].dropna()
    assert (times.dt.date == days[3]).all()


def test_demo_planted_android_gap_and_variant_rates():
    """The generator's raw records carry the planted findings at roughly their true rates."""
    frame = generate(DemoConfig(persons=4000, days=56))
    reached = frame.groupby(["anonymous_id", "platform"])["event_name"].agg(set).reset_index()
    verified = reached[reached.event_name.map(lambda s: "verify_email" in s)]
    created = verified.event_name.map(lambda s: "create_project" in s)
    android = created[verified.platform == "android"].mean()
    others = created[verified.platform != "android"].mean()
    assert android < 0.40 < 0.65 < others
    rates = StepRates()
    control = expected_activation_rate(rates, "control")
    assert expected_activation_rate(rates, "guided_tour") > control + 0.1
    assert FUNNEL[0] == "signup"
