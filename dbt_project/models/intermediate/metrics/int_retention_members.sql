-- Who is in which cohort, per granularity (day, week from Monday, month; UTC): with
-- `cohort_type: first_time` a person's cohort is the period of their first cohort event (or first
-- event of any kind for `first_seen`); with `recurring` a person is in the cohort of every period
-- in which they did the cohort event. `cohort_at` is the (first) cohort event in that period: only
-- return events at or after it count. Breakdown values are those of that event.
--
-- Incremental, by person (macros/events.sql, person_rebuild_*): a run rebuilds the persons whose
-- fct_events rows it rewrote, and everything when the retention settings or breakdowns changed.
-- The pre-hook finds those persons in fct_events itself, which has the same rows and persons as the
-- view int_metrics_events: Postgres does not flatten the view into the delete's anti-join, and
-- computed every row's breakdowns to find the persons with no event left (9.8 s at 10M events).
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='sync_all_columns',
        pre_hook="{{ delete_person_rebuild(ref('fct_events'), retention_members_settings()) }}",
    )
}}
-- depends_on: {{ ref('fct_events') }}
{%- set cfg = metrics_config() %}
{%- set retention = cfg['retention'] %}
with

events as (

    {{ person_rebuild_events(ref('int_metrics_events'), retention_members_settings()) }}

),

cohort_events as (

    select * from events
    {%- if retention['cohort_event'] != 'first_seen' %}
    where event_name = {{ metrics_literal(retention['cohort_event']) }}
    {%- endif %}

),

{%- for granularity in retention['granularities'] %}

ranked_{{ granularity }} as (

    select
        {{ metrics_literal(granularity) }} as granularity,
        {{ metrics_period_start(granularity, 'event_time') }} as cohort_start,
        *,
        row_number() over (
            partition by person_id
            {%- if retention['cohort_type'] == 'recurring' %}, {{ metrics_period_start(granularity, 'event_time') }}{% endif %}
            order by event_time, event_id
        ) as cohort_event_rank
    from cohort_events

),
{%- endfor %}

final as (

    {%- for granularity in retention['granularities'] %}
    select
        granularity,
        person_id,
        cohort_start,
        event_time as cohort_at
        {%- for breakdown in cfg['breakdowns'] %},
        breakdown_{{ loop.index }}
        {%- endfor %},
        {{ person_rebuild_columns(ref('int_metrics_events'), retention_members_settings()) }}
    from ranked_{{ granularity }}
    where cohort_event_rank = 1
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

)

select * from final
