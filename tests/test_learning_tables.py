"""The learning tables' plumbing: the declared schema is what is written, empty or not, the
funnel the models learn from comes from the metrics configuration, and the readers that turn the
marts into the models' inputs in SQL give what the frames give."""

import gc
import weakref

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.features import activity_features, first_day_features, funnel_levels, step_behaviour
from ml.patterns import baskets
from orchestration.learning.tables import (
    SCHEMAS,
    learning_funnel,
    once_per_run,
    read_event_log,
    read_event_sets,
    replace_table,
)
from orchestration.resources import WarehouseResource
from tests.pipeline import query
from tests.test_ml_features import STEPS, WINDOW, _users, random_log


def test_an_empty_result_keeps_the_declared_schema_and_rewrites_are_idempotent(duckdb_path):
    duckdb = WarehouseResource(database=str(duckdb_path))
    assert replace_table(duckdb, "conversion_predictions", pd.DataFrame()) == 0
    described = query(duckdb_path, "describe main.conversion_predictions")
    assert [(r[0], r[1]) for r in described] == [
        (c.name, c.type) for c in SCHEMAS["conversion_predictions"].columns
    ]
    frame = pd.DataFrame(
        {
            "p_tree": [0.2],
            "person_id": ["u1"],
            "split": ["test"],
            "converted": [1],
            "p_logistic": [0.7],
            "extra": ["dropped"],
        }
    )
    for _ in range(2):
        assert replace_table(duckdb, "conversion_predictions", frame) == 1
    assert query(duckdb_path, "select * from main.conversion_predictions") == [
        ("u1", "test", 1, 0.7, 0.2)
    ]


def test_the_learning_funnel_is_the_first_configured_funnel(tmp_path, monkeypatch):
    config = tmp_path / "analytics.yml"
    config.write_text(
        "funnels:\n"
        "  - {name: trial, steps: [start, pay], conversion_window: 2d}\n"
        "  - {name: other, steps: [a, b], conversion_window: 1d}\n"
    )
    monkeypatch.setenv("ANALYTICS_CONFIG", str(config))
    funnel = learning_funnel()
    assert (funnel.name, funnel.steps, funnel.window) == (
        "trial",
        ["start", "pay"],
        pd.Timedelta(days=2),
    )

    config.write_text("funnels:\n  - {name: open, steps: [a, b], conversion_window: none}\n")
    with pytest.raises(dg.Failure, match="no conversion window"):
        learning_funnel()


def _warehouse(path, events: pd.DataFrame) -> WarehouseResource:
    with duckdb.connect(str(path)) as con:
        con.register("events", events)
        con.execute("create table main.fct_events as select * from events")
    return WarehouseResource(database=str(path))


def test_the_event_log_read_in_sql_gives_the_frames_features(duckdb_path):
    """read_event_log numbers persons, names and sessions in SQL; every feature computed from it
    equals the one computed from the events as a frame."""
    events = random_log(11).assign(event_id=lambda f: [f"e{i}" for i in range(len(f))])
    # fct_events numbers each person's sessions 1, 2, ... beside their session_id
    number = events.groupby("person_id")["session_id"].transform(
        lambda ids: pd.Series(pd.factorize(ids)[0] + 1, index=ids.index)
    )
    events["session_number"] = number.where(events["session_id"].notna()).astype("Int64")
    users = _users(events)
    warehouse = _warehouse(duckdb_path, events)
    log = read_event_log(warehouse, properties_of=["purchase"])
    # the properties of purchases only; None for the other events
    bought = log.names[log.name] == "purchase"
    assert sorted(log.properties[bought]) == sorted(
        events.loc[events["event_name"] == "purchase", "properties"]
    )
    assert all(value is None for value in log.properties[~bought])
    # one number per (person, session), though the persons share session ids ("s0".."s3")
    sessions = pd.DataFrame({"person": log.person, "session": log.session})
    sessions = sessions[sessions["session"] >= 0]
    assert len(sessions) == events["session_id"].notna().sum()
    assert sessions.groupby("session")["person"].nunique().eq(1).all()
    assert sessions["session"].nunique() == len(
        events.dropna(subset=["session_id"]).drop_duplicates(["person_id", "session_id"])
    )
    levels = funnel_levels(log, STEPS, WINDOW)
    pd.testing.assert_frame_equal(levels, funnel_levels(events, STEPS, WINDOW), check_dtype=False)
    pd.testing.assert_frame_equal(
        step_behaviour(log, levels, users, STEPS, WINDOW),
        step_behaviour(events, levels, users, STEPS, WINDOW),
        check_dtype=False,
    )
    pd.testing.assert_frame_equal(
        first_day_features(log, levels, users, STEPS, WINDOW),
        first_day_features(events, levels, users, STEPS, WINDOW),
        check_dtype=False,
    )
    pd.testing.assert_frame_equal(
        activity_features(log, levels, STEPS),
        activity_features(events, levels, STEPS),
        check_dtype=False,
    )


def test_event_sets_are_each_persons_basket_counted(duckdb_path):
    """More event names than one 63-bit mask holds: the distinct sets, written out once per
    person who has them, are the persons' baskets."""
    rng = np.random.default_rng(2)
    names = [f"event_{i:03d}" for i in range(150)]
    events = pd.DataFrame(
        {
            "person_id": [f"p{rng.integers(300):03d}" for _ in range(3000)],
            "event_name": rng.choice(names[:20] + names[60:65] + names[140:], 3000),
            "event_time": pd.Timestamp("2026-01-01"),
        }
    )
    sets, persons = read_event_sets(_warehouse(duckdb_path, events))
    expected = baskets(events)
    assert list(sets.columns) == list(expected.columns)
    assert int(persons.sum()) == len(expected)
    written_out = sets.loc[sets.index.repeat(persons)]
    assert sorted(map(tuple, written_out.to_numpy())) == sorted(map(tuple, expected.to_numpy()))


def test_inputs_are_read_once_per_run(duckdb_path):
    """Two assets of one run asking for the same input get one read; the next run reads again;
    and once a run has ended, nothing holds its input any more."""
    reads = []

    class Input:
        pass

    def read():
        reads.append(weakref.ref(value := Input()))
        return value

    @dg.asset
    def first(context: dg.AssetExecutionContext, duckdb: WarehouseResource):
        return id(once_per_run(context, duckdb, "input", read))

    @dg.asset
    def second(context: dg.AssetExecutionContext, duckdb: WarehouseResource):
        return id(once_per_run(context, duckdb, "input", read))

    resources = {"duckdb": WarehouseResource(database=str(duckdb_path))}
    run = dg.materialize([first, second], resources=resources)
    assert run.output_for_node("first") == run.output_for_node("second") and len(reads) == 1
    gc.collect()
    assert reads[0]() is None, "the run ended, yet its input is still held"
    dg.materialize([first], resources=resources)
    assert len(reads) == 2
