{#
  The core event chain's shared SQL (models/intermediate/int_events_sessionized.sql and the
  incremental models/marts/core/fct_events.sql).
#}

{% macro sessionized(events, inactivity_minutes, sessions_before=none) %}
{#- `events` (a relation or CTE name, one row per stitched event) with `previous_event_time`,
    `is_session_start`, `session_number` and `session_id`: a new session starts when more than
    `inactivity_minutes` have passed since the person's previous event. Each person's events must
    all be in `events`, since the numbering runs over them; or, with `sessions_before` (a column of
    `events`, the same on each of a person's rows), all their events from the start of a session
    on, the numbering going on after that many sessions. -#}
with_previous as (

    select
        *,
        lag(event_time) over (
            partition by person_id order by event_time, event_id
        ) as previous_event_time
    from {{ events }}

),

flagged as (

    select
        *,
        case
            when previous_event_time is null then 1
            when event_time > {{ dbt.dateadd('minute', inactivity_minutes, 'previous_event_time') }}
                then 1
            else 0
        end as is_session_start
    from with_previous

),

numbered as (

    select
        *,
        sum(is_session_start) over (
            partition by person_id
            order by event_time, event_id
            rows between unbounded preceding and current row
        ){% if sessions_before %} + {{ sessions_before }}{% endif %} as session_number
    from flagged

),

sessionized as (

    select
        *,
        {{ dbt.hash(dbt.concat(['person_id', "'#'", dbt.safe_cast('session_number', dbt.type_string())])) }}
            as session_id
    from numbered

)
{%- endmacro %}


{% macro loaded_at() %}
{#- When this dbt invocation started: fct_events stamps the rows a run (re)writes with it, and the
    models built from fct_events per person use it as their watermark. -#}
cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}


{% macro delete_persons_changed_in(events) %}
{#- Pre-hook of a model built per person from `events` (fct_events) and stamped with the newest
    `loaded_at` of each person's events: deletes the persons whose events were (re)written since
    this table was last built, and the persons who no longer have any event (an anonymous person
    whose events now belong to a user). The model then builds every person with no row, which is
    exactly those (select_persons_missing_from). -#}
{% if execute and is_incremental() %}
{#- The watermark as a literal, read before anything is deleted: with a subquery in its place,
    Postgres cannot use fct_events' index on loaded_at to find the changed persons. -#}
{%- set since = run_query('select max(loaded_at) from ' ~ this).rows[0][0] %}
{{ delete_changed_and_gone_persons(events, person_rebuild_since(since)) }}
{% endif %}
{%- endmacro %}


{% macro delete_changed_and_gone_persons(events, since) %}
{#- The rows of the persons whose events in `events` were (re)written after `since` (SQL for a
    timestamp, read before anything is deleted), then those of the persons with no event any more.
    Two statements, not one with `or`: under an `or`, Postgres cannot turn either test into a
    join, and runs it as a subplan, which scans `events` again for each stored row unless its
    result fits in work_mem (see fct_events_pre_hook in macros/landings.sql for what that cost).
    Alone, each is one join on either engine. On Postgres, fct_events is indexed on both columns:
    the first delete finds the changed persons' events by the index on loaded_at, and the second
    probes the index on person_id for each stored person instead of hashing every event (4.4 ->
    1.1 s at 10M events). Only the second is run with nested loops allowed: planned so, the first
    probed every stored person's events (10 s). -#}
delete from {{ this }} as stored
where stored.person_id in (
    select person_id from {{ events }}
    where loaded_at > {{ since }}
);
{%- set gone %}
delete from {{ this }} as stored
where not exists (
    select 1 from {{ events }} as kept where kept.person_id = stored.person_id
)
{%- endset %}
{{ with_index_joins(gone) }}
{%- endmacro %}


{% macro select_persons_missing_from(events) %}
{#- `events`, restricted on an incremental run to the persons with no row in this table yet. -#}
select * from {{ events }} as candidate
{% if is_incremental() %}
where not exists (
    select 1 from {{ this }} as stored where stored.person_id = candidate.person_id
)
{% endif %}
{%- endmacro %}


{#-
  Per-person models that may hold no row for a person (int_journey_steps, int_retention_members)
  and int_persons_first_touch: incremental by person, keyed on fct_events.loaded_at, and rebuilt
  whole when the settings they are built from change. `events` is fct_events, or a view over it
  that keeps its loaded_at (int_metrics_events). Each such model:
    - selects `{{ person_rebuild_events(events, settings) }}` as its events;
    - has `pre_hook="{{ delete_person_rebuild(events, <the same settings>) }}"`;
    - adds the columns `{{ person_rebuild_columns(events, settings) }}` to its rows;
    - is `materialized='incremental', incremental_strategy='append',
      on_schema_change='sync_all_columns'`.
  `loaded_at` on a row is fct_events' newest loaded_at when the row was built, so the table's newest
  `loaded_at` is a watermark: a person whose events fct_events rewrote since has loaded_at above it.
  The plan (person_rebuild_plan) is read when the model's SQL and its pre-hook are rendered, both
  before the pre-hook deletes anything, so the persons deleted and the persons rebuilt are the
  same set. (fct_sessions and dim_users use the simpler delete_persons_changed_in, since every
  person has a row in them.)
-#}

{% macro settings_fingerprint(settings) -%}
{#- A text that changes when `settings` (what the model is built from) changes. -#}
{{ return(local_md5(tojson(settings, sort_keys=True))) }}
{%- endmacro %}


{% macro person_rebuild_plan(settings) -%}
{#- {'full': true} when the table must be built whole (not incremental, built with other settings,
    or without the columns this scheme adds), else {'full': false, 'since': the watermark}. -#}
{%- if not execute or not is_incremental() -%}
    {{ return({'full': true}) }}
{%- endif -%}
{%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
{%- if 'loaded_at' not in columns or 'settings_fingerprint' not in columns -%}
    {{ return({'full': true}) }}
{%- endif -%}
{%- set state = run_query(
    "select max(loaded_at), count(distinct settings_fingerprint), max(settings_fingerprint) from "
    ~ this
) -%}
{%- set since, fingerprints, fingerprint = state.rows[0][0], state.rows[0][1], state.rows[0][2] -%}
{%- if since is none or fingerprints != 1 or fingerprint != settings_fingerprint(settings) -%}
    {{ return({'full': true}) }}
{%- endif -%}
{{ return({'full': false, 'since': since}) }}
{%- endmacro %}


{% macro person_rebuild_since(since) -%}
{%- if since is none -%}
cast(null as {{ dbt.type_timestamp() }})
{%- else -%}
cast('{{ since }}' as {{ dbt.type_timestamp() }})
{%- endif -%}
{%- endmacro %}


{% macro delete_person_rebuild(events, settings) -%}
{#- Pre-hook: every row when the table is rebuilt whole; else the rows of the persons whose events
    were rewritten since the watermark, and of persons with no event any more. -#}
{%- set plan = person_rebuild_plan(settings) -%}
{%- if is_incremental() -%}
{%- if plan['full'] %}
delete from {{ this }}
{%- else %}
{{ delete_changed_and_gone_persons(events, person_rebuild_since(plan['since'])) }}
{%- endif %}
{%- endif -%}
{%- endmacro %}


{% macro person_rebuild_events(events, settings) -%}
{#- `events`, restricted on an incremental run to the persons the pre-hook deleted. -#}
{%- set plan = person_rebuild_plan(settings) -%}
select * from {{ events }}
{%- if not plan['full'] %}
where person_id in (
    select person_id from {{ events }}
    where loaded_at > {{ person_rebuild_since(plan['since']) }}
)
{%- endif %}
{%- endmacro %}


{% macro person_rebuild_columns(events, settings) -%}
{#- The bookkeeping columns of a row: the watermark and the settings it was built with. -#}
(select max(loaded_at) from {{ events }}) as loaded_at,
cast('{{ settings_fingerprint(settings) }}' as {{ dbt.type_string() }}) as settings_fingerprint
{%- endmacro %}


{% macro edge_keys(events, partition_by, last=false) %}
{#- One row per `partition_by` value of `events` (a relation or CTE name with `event_time` and
    `event_id`): its first `event_time` and, among the events at that instant, the smallest
    `event_id`; or its last time and greatest id with last=true. `event_id` need not be unique. -#}
{{ return(adapter.dispatch('edge_keys', 'product_analytics')(events, partition_by, last)) }}
{%- endmacro %}

{% macro default__edge_keys(events, partition_by, last) %}
{%- set edge = 'max' if last else 'min' -%}
select
    at_edge_time.{{ partition_by }},
    at_edge_time.event_time,
    {{ edge }}(at_edge_time.event_id) as event_id
from {{ events }} as at_edge_time
inner join (
    select {{ partition_by }}, {{ edge }}(event_time) as event_time
    from {{ events }}
    group by {{ partition_by }}
) as edge_times
    on at_edge_time.{{ partition_by }} = edge_times.{{ partition_by }}
    and at_edge_time.event_time = edge_times.event_time
group by at_edge_time.{{ partition_by }}, at_edge_time.event_time
{%- endmacro %}

{#- Postgres: `distinct on`, one sort. The join above is planned from two equalities that Postgres
    takes as independent, (key) and (time = the key's edge time), so it expects one row where
    there is one per key; the models that joined that "one row" to another large input were
    planned as nested loops, a person-by-person comparison (dim_users, fct_sessions). `distinct
    on` is estimated at the key's distinct values. Nulls last both ways, as min/max skip them. -#}
{% macro postgres__edge_keys(events, partition_by, last) %}
{{- postgres__edge_events(events, partition_by, [partition_by, 'event_time', 'event_id'], last) }}
{%- endmacro %}


{% macro edge_events(events, partition_by, columns, last=false) %}
{#- One row per `partition_by` value of `events` (a relation or CTE name with `event_time` and a
    unique `event_id`), with `columns` (a list): its first event by (event_time, event_id), or its
    last with last=true. The same rows as
    `row_number() over (partition by .. order by event_time, event_id) = 1` (desc for the last),
    from two grouped scans and two joins (edge_keys, then the event): a window ranks every event,
    and took 4-5 times as long at 40M events on DuckDB (bench/README.md). On Postgres, `distinct
    on` (see postgres__edge_keys). -#}
{{ return(adapter.dispatch('edge_events', 'product_analytics')(events, partition_by, columns, last)) }}
{%- endmacro %}

{% macro default__edge_events(events, partition_by, columns, last) %}
select
    {%- for column in columns %}
    edge_event.{{ column }}{% if not loop.last %},{% endif %}
    {%- endfor %}
from {{ events }} as edge_event
inner join (
    {{ edge_keys(events, partition_by, last) }}
) as edge_ids
    on edge_event.{{ partition_by }} = edge_ids.{{ partition_by }}
    and edge_event.event_id = edge_ids.event_id
{%- endmacro %}

{% macro postgres__edge_events(events, partition_by, columns, last) %}
select distinct on (edge_event.{{ partition_by }})
    {%- for column in columns %}
    edge_event.{{ column }}{% if not loop.last %},{% endif %}
    {%- endfor %}
{%- set direction = 'desc' if last else 'asc' %}
from {{ events }} as edge_event
order by
    edge_event.{{ partition_by }},
    edge_event.event_time {{ direction }} nulls last,
    edge_event.event_id {{ direction }} nulls last
{%- endmacro %}
