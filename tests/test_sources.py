"""The file source and the demo generator."""

import json
import os
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
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


def test_a_folder_of_daily_exports_is_read_by_day_with_typed_times(tmp_path):
    """CSV and Parquet files are read column-wise and only for the days they hold: each record
    lands on the UTC day of its time whatever file it sits in, a Parquet file's timestamps count
    (naive ones as UTC), and a record whose time does not parse goes to the first day any file
    covers, with the JSON-lines records of the same folder."""
    pd.DataFrame(
        {
            "event_id": ["p1", "p2", "p3"],
            "event_name": ["signup", "activate", "activate"],
            # 23:30 at UTC-3 is 02:30 UTC on the 3rd
            "event_time": pd.to_datetime(
                ["2026-09-02T10:00:00-03:00", "2026-09-02T23:30:00-03:00",
                 "2026-09-03T00:00:00Z"], format="ISO8601", utc=True
            ).tz_convert("America/Sao_Paulo"),
            "user_id": ["u1", "u2", "u3"],
        }
    ).to_parquet(tmp_path / "b-aware.parquet")
    pd.DataFrame(
        {
            "event_id": ["n1", None],
            "event_name": ["signup", "signup"],
            "event_time": pd.to_datetime(["2026-09-03T23:59:59", "2026-09-04T00:00:00"]),
            "user_id": ["u4", "u5"],
        }
    ).to_parquet(tmp_path / "c-naive.parquet")
    (tmp_path / "a.csv").write_text(
        "event_id,event_name,event_time,anonymous_id,properties\n"
        'c1,page_view,2026-09-04T01:00:00+02:00,a1,"{""plan"": ""pro""}"\n'
        "c2,page_view,not a time,a2,\n"
        "c3,page_view,,a3,\n"
    )
    (tmp_path / "d.jsonl").write_text(json.dumps(RECORDS[0]) + "\n{broken\n")
    source = FileSource(tmp_path)
    assert source.available_days() == [date(2026, 9, d) for d in (1, 2, 3, 4)]

    def ids(day):
        frame = source.fetch_day(date(2026, 9, day))
        return sorted(frame["event_id"].fillna("-").tolist())

    # The 1st is the first day covered (by the JSON-lines record): the unplaceable c2 and c3 and
    # the broken line ("-", no id) go there.
    assert ids(1) == ["-", "1", "c2", "c3"]
    assert ids(2) == ["p1"]
    assert ids(3) == ["c1", "n1", "p2", "p3"]  # c1: 01:00+02:00 is 23:00 UTC on the 3rd
    assert ids(4) == ["-"]  # the naive midnight, without an id (normalize derives one)
    assert source.fetch_day(date(2026, 9, 5)).empty
    landed = normalize(source.fetch_day(date(2026, 9, 3)), source="file", fetch_day=None)
    times = landed.set_index("event_id")["event_time"].astype(str).to_dict()
    assert times == {
        "c1": "2026-09-03 23:00:00", "n1": "2026-09-03 23:59:59",
        "p2": "2026-09-03 02:30:00", "p3": "2026-09-03 00:00:00",
    }
    assert landed["quarantine_reason"].isna().all()
    first = normalize(source.fetch_day(date(2026, 9, 1)), source="file", fetch_day=None)
    reasons = first.set_index(first["event_id"])["quarantine_reason"]
    assert reasons["c2"] == reasons["c3"] == "unparseable event_time"


def test_the_demos_daily_parquet_read_back_gives_each_day_its_records(tmp_path):
    """What ``make bench SOURCE=file`` ingests: the demo's days written as Parquet and read by the
    file source give every day the demo's own records, except that a record whose time does not
    parse goes to the first day (a file has no fetch day to keep it on)."""
    import pyarrow.parquet as pq

    demo = DemoSource(SMALL)
    for day in demo.available_days():
        pq.write_table(demo.fetch_table(day), tmp_path / f"{day.isoformat()}.parquet")
    files = FileSource(tmp_path)
    assert files.available_days() == demo.available_days()
    unparseable = set()
    for day in demo.available_days():
        expected = demo.fetch_day(day)
        bad = pd.to_datetime(expected["event_time"], format="ISO8601", errors="coerce").isna()
        unparseable |= set(expected.loc[bad, "event_id"])
        got = set(files.fetch_day(day)["event_id"])
        if day != SMALL.start:
            assert got == set(expected.loc[~bad, "event_id"]), day
    assert len(unparseable) >= SMALL.days - 1
    first = set(files.fetch_day(SMALL.start)["event_id"])
    assert unparseable <= first


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


def _age(path, seconds=3600):
    """Set the file's modification time ``seconds`` back, as a file written earlier has."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - int(seconds * 1e9)))


def _spoil(path):
    """Overwrite the file with bytes that no reader accepts, keeping its size and modification
    time: a source that opens it fails, one that trusts the day index does not notice."""
    stat = path.stat()
    path.write_bytes(b"\x00" * stat.st_size)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_the_day_index_lets_a_later_run_read_only_the_files_of_its_day(tmp_path):
    """A daily run of the file source opens the files that hold its day, not every file of the
    folder: which days a file holds is kept in the index while the file is unchanged. A changed
    or newly written file is read again, and the index never changes what a day gets."""
    folder, index = tmp_path / "exports", tmp_path / "state" / "days.index"
    folder.mkdir()

    def day_file(day, ids, times):
        frame = pd.DataFrame({"event_id": ids, "event_name": "signup", "event_time": times,
                              "user_id": [f"u-{i}" for i in ids]})
        frame.to_parquet(folder / f"{day}.parquet")

    day_file("2026-09-01", ["a1", "a2"], ["2026-09-01T08:00:00Z", "2026-09-01T09:00:00Z"])
    day_file("2026-09-02", ["b1"], ["2026-09-02T08:00:00Z"])
    day_file("2026-09-03", ["c1", "c2"], ["2026-09-03T08:00:00Z", "never"])  # c2: unplaceable
    (folder / "late.csv").write_text(
        "event_id,event_name,event_time,user_id\n"
        "l1,activate,2026-09-02T23:00:00-02:00,u-l1\n"  # 01:00 UTC on the 3rd
        "l2,activate,2026-09-02T10:00:00Z,u-l2\n"
    )
    for path in folder.iterdir():
        _age(path)
    days = [date(2026, 9, d) for d in (1, 2, 3)]

    def ids(source, day):
        return sorted(source.fetch_day(day)["event_id"])

    plain = FileSource(folder)
    expected = {day: ids(plain, day) for day in days}
    assert expected == {days[0]: ["a1", "a2", "c2"], days[1]: ["b1", "l2"],
                        days[2]: ["c1", "l1"]}
    first = FileSource(folder, index=index)
    assert first.available_days() == days
    assert {day: ids(first, day) for day in days} == expected
    stored = json.loads(index.read_text())["files"]
    assert {Path(p).name: (e["days"], e["unplaceable"]) for p, e in stored.items()} == {
        "2026-09-01.parquet": (["2026-09-01"], False),
        "2026-09-02.parquet": (["2026-09-02"], False),
        "2026-09-03.parquet": (["2026-09-03"], True),
        "late.csv": (["2026-09-02", "2026-09-03"], False),
    }

    # The next run: the files that do not hold the 2nd cannot be read any more, unnoticed.
    _spoil(folder / "2026-09-01.parquet")
    _spoil(folder / "2026-09-03.parquet")
    later = FileSource(folder, index=index)
    assert later.available_days() == days
    assert ids(later, days[1]) == expected[days[1]]
    with pytest.raises(pa.ArrowInvalid):
        later.fetch_day(days[2])  # this day's file is spoiled: read, not taken from the index

    # A file written since is read: here late.csv, rewritten with a row of the 4th. Written just
    # now, it is not kept in the index (its modification time could still not tell a change).
    (folder / "late.csv").write_text(
        "event_id,event_name,event_time,user_id\nl3,activate,2026-09-04T10:00:00Z,u-l3\n"
    )
    again = FileSource(folder, index=index)
    assert again.available_days() == [*days, date(2026, 9, 4)]
    assert ids(again, date(2026, 9, 4)) == ["l3"]
    assert "late.csv" not in {Path(p).name for p in json.loads(index.read_text())["files"]}


def test_an_unreadable_day_index_is_read_as_empty(tmp_path):
    (tmp_path / "exports").mkdir()
    path = tmp_path / "exports" / "events.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in RECORDS) + "\n")
    _age(path)
    index = tmp_path / "days.index"
    index.write_text("{not json")
    source = FileSource(tmp_path / "exports", index=index)
    assert source.available_days() == [date(2026, 9, 1), date(2026, 9, 2)]
    assert sorted(source.fetch_day(date(2026, 9, 2))["event_id"]) == ["2", "3"]
    assert [Path(p).name for p in json.loads(index.read_text())["files"]] == ["events.jsonl"]
    # Taken from the index, a JSON-lines file is still read record by record on its days.
    assert sorted(FileSource(tmp_path / "exports", index=index).fetch_day(
        date(2026, 9, 1))["event_id"]) == ["1"]
