{#
  Landings: how stg_raw__events and fct_events read only what changed since they were last built.

  Each ingest transaction is one landing (orchestration/ingest/assets.py, land_days): it replaces
  whole days of raw.events, stamps every row it writes with its landing_id, and records in
  raw.landings each day it replaced, also a day that now has no record. Landing ids grow in the
  order landings commit. Both models keep the landing_id of each event's copy, so the newest
  landing_id a model holds is its watermark: what landed after it is new, and a day landed after it
  replaced that day's rows, so the model's rows of that day are stale.

  An incremental run of either model:
    1. pre-hook: computes, from the watermark, what it must rebuild into a work table beside the
       model (`<model>__changes`), then deletes those rows;
    2. the model's SQL builds them again from the work table;
    3. post-hook: drops the work table.
  The work table exists because the model's SQL runs after the pre-hook's delete, and what to
  rebuild can only be read before it. A run that fails leaves it behind; the next run replaces it.

  A model built before landing ids (no landing_id column) is built whole once: the pre-hook
  deletes every row, the model's SQL selects everything, and on_schema_change='append_new_columns'
  adds the column.
#}

{% macro landing_watermark() -%}
{#- This incremental model's newest landing_id (0 when it holds none or only rows landed before
    landing ids), or none when it must be built whole: not incremental, or built before landing ids.
    Read when the model's SQL and its hooks are rendered, before the pre-hook changes anything:
    twice a run. On Postgres both models are indexed on landing_id (their `indexes` config), which
    makes this read, and the staged events that landed after the watermark (fct_events'
    pre-hook), index scans; each read was a scan of the whole table, about 1 s at 10M events. -#}
{%- if not execute or not is_incremental() -%}
    {{ return(none) }}
{%- endif -%}
{%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
{%- if 'landing_id' not in columns -%}
    {{ return(none) }}
{%- endif -%}
{%- set newest = run_query("select coalesce(max(landing_id), 0) from " ~ this).rows[0][0] -%}
{{ return(newest | int) }}
{%- endmacro %}


{% macro landing_work_table() -%}
{{ return(api.Relation.create(
    database=this.database, schema=this.schema, identifier=this.identifier ~ '__changes',
    type='table')) }}
{%- endmacro %}


{% macro replaced_days(watermark) -%}
{#- The days landed after `watermark`: the model's rows of those days are from an older landing. -#}
select distinct partition_date from {{ source('raw', 'landings') }}
where landing_id > {{ watermark }}
{%- endmacro %}


{% macro landing_pre_hook(delete_condition, index_joins=false) -%}
{#- The pre-hook of an incremental model read by landings, called as
    `{% call(watermark) landing_pre_hook(condition) %} <the work table's select> {% endcall %}`:
    the block selects what to rebuild, given the model's watermark; `delete_condition` (on
    `stored`, the model's rows, and `changes`, the work table's) picks the rows it deletes. Nothing
    when the model is built from scratch; every row when it was built before landing ids.
    The work table is analyzed (Postgres) before the delete and the model's query join it: planned
    without statistics, fct_events' query sorted all 10M staged events to join 16,000 persons
    (bench/README.md). `index_joins`: the model is indexed on the columns the delete joins on
    (macros/ctes.sql, with_index_joins). -#}
{%- if execute and is_incremental() -%}
{%- set watermark = landing_watermark() -%}
{%- if watermark is none -%}
delete from {{ this }}
{%- else -%}
{%- set work = landing_work_table() -%}
drop table if exists {{ work }};
create table {{ work }} as {{ caller(watermark) }};
{%- set delete -%}
delete from {{ this }} as stored
where exists (select 1 from {{ work }} as changes where {{ delete_condition }})
{%- endset %}
{{ sql_statements([analyze_table(work), with_index_joins(delete) if index_joins else delete]) }}
{%- endif -%}
{%- endif -%}
{%- endmacro %}


{% macro drop_landing_work_table() -%}
{%- if execute and is_incremental() -%}
drop table if exists {{ landing_work_table() }}
{%- endif -%}
{%- endmacro %}


{% macro stg_raw__events_pre_hook() -%}
{#- The event_ids to choose a copy for again: those that landed after the watermark, and those of
    the model's rows whose day was landed again after it. -#}
{%- call(watermark) landing_pre_hook('changes.event_id = stored.event_id') -%}
select event_id from {{ source('raw', 'events') }}
where landing_id > {{ watermark }} and quarantine_reason is null
union
select event_id from {{ this }}
where partition_date in ({{ replaced_days(watermark) }})
{%- endcall -%}
{%- endmacro %}


{% macro fct_events_pre_hook() -%}
{#- One row per person whose events change, with where their events are rebuilt from.

    The changes, each on the side of the person it belonged to before (stored) and after (staged):
    - stored events whose day was landed again (their copy is gone or replaced);
    - staged events that landed after the watermark, or that replace one of those;
    - stored anonymous events (no user id) whose anonymous id is now linked to another person.
      Links change only through events with that anonymous id (int_identity_links), so only the
      anonymous ids of the first two kinds are looked at.
    A person's events are numbered into sessions from first to last, so everything before their
    first change stays as it is, except that the change may continue the session of the last event
    before it: the person is rebuilt from the start of that session (from_session_number, whose
    first event is from_event_time and from_event_id), or whole when no event comes before the
    change (from_session_number 1, from_event_id null). Session numbers grow with (event_time,
    event_id), so that session is the greatest session number before the change. -#}
{%- call(watermark) landing_pre_hook(
    'changes.person_id = stored.person_id'
    ~ ' and stored.session_number >= changes.from_session_number', index_joins=true) -%}
with

stale as (

    select event_id, person_id, event_time, anonymous_id
    from {{ this }}
    where partition_date in ({{ replaced_days(watermark) }})

),

-- The staged events that landed after the watermark, with their person (int_events_stitched).
landed as (

    select event_id, anonymous_id, person_id, event_time
    from {{ ref('int_events_stitched') }}
    where landing_id > {{ watermark }}

),

-- With the staged events that replace a stale one from an earlier landing (a re-sent event whose
-- kept copy changed). Only the stale event_ids that did not land again are looked up, which is
-- usually none. Looking up every stale event_id in the staged events, and then every fresh one
-- again in int_events_stitched for its person, was 28 of this pre-hook's 44 s at 10M events on
-- Postgres (bench/README.md). The two parts have no event_id in common.
-- Written as a union, not `landing_id > ... or event_id in (...)`: under an `or`, Postgres tests
-- the `in` row by row against the whole subquery when it expects more rows than fit in work_mem
-- (at 4M events the daily run's pre-hook did not finish in ten minutes); alone, each part is a
-- scan or a hash semi-join on either engine. The same below, for `changes`.
fresh as (

    select * from landed
    union all
    select event_id, anonymous_id, person_id, event_time
    from {{ ref('int_events_stitched') }}
    where event_id in (
        select stale.event_id from stale
        where not exists (select 1 from landed where landed.event_id = stale.event_id)
    )

),

changed_anonymous_ids as (

    select anonymous_id from stale where anonymous_id is not null
    union
    select anonymous_id from fresh where anonymous_id is not null

),

moved as (

    select stored.event_id, stored.person_id, stored.event_time
    from {{ this }} as stored
    left join {{ ref('int_identity_links') }} as links
        on stored.anonymous_id = links.anonymous_id
    where stored.user_id is null
        and stored.anonymous_id in (select anonymous_id from changed_anonymous_ids)
        and stored.person_id <> coalesce(links.user_id, stored.anonymous_id)

),

changes as (

    select person_id, event_time, event_id from stale
    union all
    select person_id, event_time, event_id from moved
    union all
    select person_id, event_time, event_id from fresh
    union all
    select person_id, event_time, event_id
    from {{ ref('int_events_stitched') }}
    where event_id in (select event_id from moved)

),

-- Each touched person's first change: its time, then the smallest event_id at that time.
first_changes as (

    {{ edge_keys('changes', 'person_id') }}

),

last_kept_sessions as (

    select stored.person_id, max(stored.session_number) as session_number
    from {{ this }} as stored
    inner join first_changes
        on stored.person_id = first_changes.person_id
    where stored.event_time < first_changes.event_time
        or (stored.event_time = first_changes.event_time
            and stored.event_id < first_changes.event_id)
    group by stored.person_id

),

last_kept_session_events as (

    select stored.person_id, stored.event_time, stored.event_id
    from {{ this }} as stored
    inner join last_kept_sessions
        on stored.person_id = last_kept_sessions.person_id
        and stored.session_number = last_kept_sessions.session_number

),

session_starts as (

    {{ edge_keys('last_kept_session_events', 'person_id') }}

)

select
    first_changes.person_id,
    coalesce(last_kept_sessions.session_number, 1) as from_session_number,
    session_starts.event_time as from_event_time,
    session_starts.event_id as from_event_id
from first_changes
left join last_kept_sessions
    on first_changes.person_id = last_kept_sessions.person_id
left join session_starts
    on first_changes.person_id = session_starts.person_id
{%- endcall -%}
{%- endmacro %}
