"""Other projects' own test cases (../shared/peers), reproduced through the production dbt SQL.

The peers' events are landed with the production ingest path, the production dbt models are built
with a metrics configuration that states each peer's funnel or retention definition, and the results
are compared with the peers' expected values. Where our definitions differ from a peer's, the test
says how (see docs/metrics.md, "Checked against peers").
"""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta

import pandas as pd
import pytest
import yaml

from tests.conftest import SHARED
from tests.metrics_dbt import build_or_fail, land_events, query

CH_EPOCH = datetime(2020, 1, 1)
# PostHog funnels: case -> (funnel name, steps, window, order)
POSTHOG_FUNNELS = {
    "ph_incomplete_tries": (
        "funnel_multiple_incomplete_tries",
        ["user signed up", "$pageview", "something else"],
        "1d",
        "ordered",
    ),
    "ph_conversion_times": (
        "funnel_step_conversion_times",
        ["sign up", "play movie", "buy"],
        "7d",
        "ordered",
    ),
    "ph_windows_14d": (
        "funnel_different_conversion_windows",
        ["user signed up", "pageview"],
        "14d",
        "ordered",
    ),
    "ph_windows_5m": (
        "funnel_different_conversion_windows",
        ["user signed up", "pageview"],
        "5m",
        "ordered",
    ),
    "ph_basic_strict": (
        "funnel_basic_strict",
        ["user signed up", "$pageview", "insight viewed"],
        "14d",
        "strict",
    ),
}
RECURRING_CASES = (
    "retention_day_interval_recurring",
    "retention_month_interval_recurring",
    "retention_breakdown_country_recurring",
)


@pytest.fixture(scope="module")
def peers_dir():
    """The peers' folder (module-scoped twin of conftest's ``peers_dir``; skipped when absent)."""
    path = SHARED / "peers"
    if not path.exists():
        pytest.skip(f"peer cases not found at {path} (CI clones ../shared beside the repo)")
    return path


def _csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _ch_default_cases(peers_dir):
    return [
        row
        for row in _csv(peers_dir / "clickhouse" / "windowfunnel_expected.csv")
        if row["mode"] == "default"
    ]


def _ch_funnel_name(row) -> str:
    return f"ch {row['dataset']} {row['window_s']}s {row['steps']}"


def _records(peers_dir) -> list[dict]:
    records: list[dict] = []
    for i, row in enumerate(_csv(peers_dir / "clickhouse" / "windowfunnel_events.csv")):
        records.append(
            {
                "event_id": f"ch-{i}",
                "event_name": f"{row['dataset']}:{row['event']}",
                "event_time": (CH_EPOCH + timedelta(seconds=int(row["ts"]))).isoformat(),
                "user_id": f"{row['dataset']}:{row['user']}",
            }
        )
    countries = json.loads((peers_dir / "posthog" / "posthog_person_country.json").read_text())
    for i, row in enumerate(_csv(peers_dir / "posthog" / "posthog_cases_events.csv")):
        case = row["case"]
        is_funnel = case.startswith("funnel_")
        records.append(
            {
                "event_id": f"ph-{i}",
                "event_name": f"{case}:{row['event']}" if is_funnel else row["event"],
                "event_time": row["timestamp"],
                "user_id": f"{case}:{row['person_id']}",
                "anonymous_id": f"{case}:{row['distinct_id']}",
                "country": countries.get(row["person_id"])
                if case == "retention_breakdown_country_recurring"
                else None,
                "properties": {"peer_case": case},
            }
        )
    for i, row in enumerate(_csv(peers_dir / "dbt_product_analytics" / "raw_orders_simple.csv")):
        records.append(
            {
                "event_id": f"dmt-{i}",
                "event_name": f"dmt:{row['status']}",
                "event_time": f"{row['order_date']}T00:00:00",
                "user_id": f"dmt:{row['customer_id']}",
            }
        )
    return records


def _config(peers_dir, retention: dict) -> str:
    funnels = []
    for row in _ch_default_cases(peers_dir):
        name = _ch_funnel_name(row)
        if name not in {f["name"] for f in funnels}:
            steps = [f"{row['dataset']}:{step}" for step in row["steps"].split("|")]
            funnels.append(
                {"name": name, "steps": steps, "conversion_window": f"{row['window_s']}s"}
            )
    for name, (case, steps, window, order) in POSTHOG_FUNNELS.items():
        funnels.append(
            {
                "name": name,
                "steps": [f"{case}:{step}" for step in steps],
                "conversion_window": window,
                "order": order,
            }
        )
    funnels.append(
        {
            "name": "dmt_funnel_simple",
            "steps": ["dmt:placed", "dmt:completed", "dmt:returned"],
            "conversion_window": "none",
            "granularity": "day",
        }
    )
    return yaml.safe_dump(
        {
            "funnels": funnels,
            "breakdowns": ["country", "properties.peer_case"],
            "retention": retention,
        }
    )


@pytest.fixture(scope="module")
def peer_results(peers_dir, tmp_path_factory):
    """Both dbt builds (recurring, then first-time retention) on one landing of every peer event."""
    database = tmp_path_factory.mktemp("peers") / "peers.duckdb"
    land_events(database, _records(peers_dir))
    grains = {"granularities": ["day", "month"], "max_periods": {"day": 12, "month": 12}}
    build_or_fail(
        database,
        _config(
            peers_dir,
            {
                "cohort_event": "$pageview",
                "return_event": "$pageview",
                "cohort_type": "recurring",
                **grains,
            },
        ),
    )
    results = {
        "levels": query(database, "select funnel_name, person_id, level from int_funnel_levels"),
        "funnels": query(database, "select * from funnel_conversion where segment_name = 'all'"),
        "recurring": query(database, "select * from retention_cohorts_by_segment"),
    }
    build_or_fail(
        database,
        _config(
            peers_dir,
            {
                "cohort_event": "$user_signed_up",
                "return_event": "$pageview",
                "cohort_type": "first_time",
                **grains,
            },
        ),
        select="int_retention_members+",
    )
    results["first_time"] = query(database, "select * from retention_cohorts_by_segment")
    return results


# --- ClickHouse windowFunnel, default mode ------------------------------------------------------


def test_clickhouse_window_funnel_default_mode(peers_dir, peer_results):
    """Every default-mode case: each user's level in int_funnel_levels (what funnel_conversion
    counts) equals ClickHouse's max_step."""
    levels = peer_results["levels"].set_index(["funnel_name", "person_id"])["level"].to_dict()
    cases = _ch_default_cases(peers_dir)
    mismatches = [
        (row, levels.get((_ch_funnel_name(row), f"{row['dataset']}:{row['user']}"), 0))
        for row in cases
        if levels.get((_ch_funnel_name(row), f"{row['dataset']}:{row['user']}"), 0)
        != int(row["max_step"])
    ]
    assert len(cases) == 14
    assert mismatches == []


def test_clickhouse_levels_are_what_funnel_conversion_counts(peer_results):
    levels, funnels = peer_results["levels"], peer_results["funnels"]
    for (name, step), users in funnels.set_index(["funnel_name", "step_index"])["users"].items():
        assert users == int((levels[levels.funnel_name == name].level >= step).sum())


# --- PostHog funnels ------------------------------------------------------------------------------


def _funnel(peer_results, name) -> pd.DataFrame:
    frame = peer_results["funnels"]
    return frame[frame.funnel_name == name].sort_values("step_index").reset_index(drop=True)


def test_posthog_multiple_incomplete_tries(peer_results):
    """The completed try's time counts, not an incomplete retry's (1 person, 3600 s to step 2)."""
    funnel = _funnel(peer_results, "ph_incomplete_tries")
    assert funnel.users[0] == 1
    assert funnel.median_seconds_from_previous[1] == 3600
    assert funnel.median_seconds_from_start[1] == 3600


def test_posthog_step_conversion_times(peer_results):
    """PostHog reports time from the previous step: our median_seconds_from_previous. (Its averages
    are 6000 and 5400; the median equals the average only for step 3's two converters.)"""
    funnel = _funnel(peer_results, "ph_conversion_times")
    assert pd.isna(funnel.median_seconds_from_previous[0])
    assert list(funnel.median_seconds_from_previous[1:]) == [7200, 5400]
    assert list(funnel.users) == [3, 3, 2]


@pytest.mark.parametrize(
    ("name", "counts", "seconds"), [("ph_windows_14d", [3, 2], 600), ("ph_windows_5m", [3, 1], 300)]
)
def test_posthog_conversion_windows(peer_results, name, counts, seconds):
    """Window end inclusive (14:00 -> 14:05 converts in 5 minutes). PostHog's figure is an average;
    with at most two converters our median is the same number."""
    funnel = _funnel(peer_results, name)
    assert list(funnel.users) == counts
    assert funnel.median_seconds_from_previous[1] == seconds


def test_posthog_strict_funnel(peer_results):
    """`order: strict`: each step must be the person's very next event."""
    assert list(_funnel(peer_results, "ph_basic_strict").users) == [7, 2, 1]


# --- PostHog retention ----------------------------------------------------------------------------


def _posthog_matrix(
    cases, retention: pd.DataFrame, case: str, segment=("properties.peer_case", None), matrix=None
):
    """Our matrix laid out as PostHog's: row i = cohort i periods after the first, column 0 = cohort
    size, column n = retained_users in period n. Cells past PostHog's date_to are cut off there (it
    reads no data after date_to) and must be 0 in its matrix; cells our data does not
    reach are 0."""
    params = cases[case]["params"]
    granularity = params["period"].lower()
    date_to = pd.Timestamp(params["date_to"]).normalize()
    size = params["totalIntervals"]
    if "cohort_dates_start" in cases[case]:
        start = pd.Timestamp(cases[case]["cohort_dates_start"])
    else:  # the range is totalIntervals periods ending with date_to's
        start = date_to - pd.DateOffset(days=size - 1)
    name, value = segment
    ours = retention[
        (retention.granularity == granularity)
        & (retention.segment_name == name)
        & (retention.segment_value == (value or case))
    ]
    ours = ours.set_index([pd.to_datetime(ours.cohort_start), "period_number"])
    offset = (
        (lambda k: pd.DateOffset(days=k))
        if granularity == "day"
        else (lambda k: pd.DateOffset(months=k))
    )
    got, expected_in_range = [], []
    for i in range(size):
        row, expected_row = [], []
        for n in range(size - i):
            cohort = start + offset(i)
            inside = cohort + offset(n) <= date_to
            if (cohort, n) in ours.index:
                record = ours.loc[(cohort, n)]
                value_ours = int(record.cohort_users if n == 0 else record.retained_users)
            else:
                value_ours = 0
            row.append(value_ours if inside else 0)
            expected_row.append((matrix or cases[case]["values_count"])[i][n])
        got.append(row)
        expected_in_range.append(expected_row)
    return got, expected_in_range


@pytest.fixture(scope="module")
def posthog_cases(peers_dir):
    return json.loads((peers_dir / "posthog" / "posthog_cases_expected.json").read_text())


@pytest.mark.parametrize(
    "case", ["retention_day_interval_recurring", "retention_month_interval_recurring"]
)
def test_posthog_recurring_retention(posthog_cases, peer_results, case):
    got, expected = _posthog_matrix(posthog_cases, peer_results["recurring"], case)
    assert got == expected


@pytest.mark.parametrize("country", ["US", "UK", "Germany"])
def test_posthog_retention_breakdown_by_country(posthog_cases, peer_results, country):
    case = "retention_breakdown_country_recurring"
    got, expected = _posthog_matrix(
        posthog_cases,
        peer_results["recurring"],
        case,
        segment=("country", country),
        matrix=posthog_cases[case]["values_count"][country],
    )
    assert got == expected


def test_posthog_first_time_retention(posthog_cases, peer_results):
    """The person whose first signup (06-05) is before the range is in the 06-05 cohort, so in no
    cohort of the compared range, as PostHog drops them."""
    got, expected = _posthog_matrix(
        posthog_cases, peer_results["first_time"], "retention_first_time_day"
    )
    assert got == expected


# --- dbt_product_analytics ------------------------------------------------------------------------


def test_dbt_product_analytics_funnel_date_granular(peers_dir, peer_results):
    """`granularity: day` and `conversion_window: none`: a step counts on the same day as the
    previous one or later, with no window, as dbt_product_analytics' funnel."""
    expected = _csv(peers_dir / "dbt_product_analytics" / "dmt_expected__funnel_simple.csv")
    funnel = _funnel(peer_results, "dmt_funnel_simple")
    assert list(funnel.step_name) == [f"dmt:{row['event_type']}" for row in expected]
    assert list(funnel.users) == [int(row["unique_users"]) for row in expected]
    for ours, row in zip(funnel.itertuples(), expected, strict=True):
        assert ours.conversion_from_start == pytest.approx(float(row["pct_conversion"]), abs=1e-12)
        if row["pct_of_previous"]:
            assert ours.conversion_from_previous == pytest.approx(
                float(row["pct_of_previous"]), abs=1e-12
            )
        else:
            assert pd.isna(ours.conversion_from_previous)


def test_dbt_product_analytics_unbounded_retention(peers_dir, tmp_path):
    """dbt_product_analytics' retention: a person's start is their first event of any kind (date
    granular), and period N counts persons with a `completed` event on or after start + N days.
    That is our `retained_users_unbounded` with `cohort_event: first_seen`, day cohorts, summed
    over cohorts. Its stored expected file (24 persons; 19/4/3/3 at periods 0/1/7/14) is reproduced
    exactly by the stored input's January 2018 events (order_date < 2018-02-01); the stored
    integration model's own `start_date: 2018-01-17` filter does not reproduce it on this input
    (58 persons), so we take the expected file to have been produced from January's data and state
    that assumption here and in docs/metrics.md."""
    orders = [r for r in _csv(peers_dir / "dbt_product_analytics" / "raw_orders.csv")
              if r["order_date"] < "2018-02-01"]
    database = tmp_path / "dmt_retention.duckdb"
    land_events(database, [
        {"event_id": f"dmt-ret-{r['id']}", "event_name": r["status"],
         "event_time": f"{r['order_date']}T00:00:00", "user_id": f"dmt:{r['user_id']}"}
        for r in orders
    ])
    build_or_fail(
        database,
        yaml.safe_dump({"retention": {
            "cohort_event": "first_seen", "return_event": "completed",
            "cohort_type": "first_time", "granularities": ["day"], "max_periods": {"day": 30},
        }}),
        select="+dim_users +fct_sessions +retention_cohorts",
    )
    ours = query(database, """
        select period_number, sum(retained_users_unbounded) as users,
               (select sum(cohort_users) from retention_cohorts
                where granularity = 'day' and period_number = 0) as cohort
        from retention_cohorts
        where granularity = 'day'
        group by period_number
    """).set_index("period_number")
    expected = _csv(peers_dir / "dbt_product_analytics" / "dmt_expected__retention.csv")
    for row in expected:
        period = int(row["period"])
        users = int(ours.loc[period, "users"])
        assert users == int(row["unique_users"]), f"period {period}"
        share = users / ours.loc[period, "cohort"]
        assert share == pytest.approx(float(row["pct_users"]), abs=1e-12)
