"""A snapshot of the Dagster graph: every asset key (with its group and upstream keys), check, job
and schedule. A change to the graph shows up in review as a change to tests/snapshots/graph.txt.
Regenerate with: UPDATE_SNAPSHOTS=1 make test (then read the diff)."""

import os
from pathlib import Path

SNAPSHOT = Path(__file__).parent / "snapshots" / "graph.txt"


def describe_graph() -> str:
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    lines = []
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        parents = ", ".join(sorted(p.to_user_string() for p in node.parent_keys))
        partitions = node.partitions_def
        partitioned = f" [{type(partitions).__name__}]" if partitions else ""
        lines.append(
            f"asset {key.to_user_string()}{partitioned} group={node.group_name} <- {parents}"
        )
    def check_order(k):
        return (k.asset_key.to_user_string(), k.name)

    for check_key in sorted(graph.asset_check_keys, key=check_order):
        lines.append(f"check {check_key.asset_key.to_user_string()}:{check_key.name}")
    for job in sorted(defs.resolve_all_job_defs(), key=lambda j: j.name):
        if not job.name.startswith("__"):
            lines.append(f"job {job.name}")
    for schedule in sorted(defs.schedules or [], key=lambda s: s.name):
        lines.append(f"schedule {schedule.name} {schedule.cron_schedule} -> {schedule.job_name}")
    for sensor in sorted(defs.sensors or [], key=lambda s: s.name):
        lines.append(f"sensor {sensor.name}")
    return "\n".join(lines) + "\n"


def test_graph_matches_snapshot():
    current = describe_graph()
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(current)
    assert current == SNAPSHOT.read_text(), (
        "the asset graph changed; if intended, run UPDATE_SNAPSHOTS=1 make test and commit the diff"
    )


def test_graph_has_lineage_from_raw_extract_to_marts():
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    from dagster import AssetKey

    upstream = graph.get(AssetKey("fct_events")).parent_keys
    assert AssetKey("int_events_sessionized") in upstream
    ancestors = graph.upstream_key_iterator(AssetKey("fct_events"))
    assert AssetKey("raw_events") in set(ancestors)
