-- One row per person. Platform and country are the person's first event's; the first-touch
-- utm_source is the earliest utm_source on any of the person's events, anonymous ones included.
-- Incremental, by person: a run rebuilds only the persons whose fct_events rows it rewrote
-- (macros/events.sql, delete_persons_changed_in).
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        pre_hook="{{ delete_persons_changed_in(ref('fct_events')) }}",
    )
}}
with

events as {{ inline_cte(not is_incremental()) }} (

    {{ select_persons_missing_from(ref('fct_events')) }}

),

first_events as (

    {{ edge_events('events', 'person_id', ['person_id', 'platform', 'country']) }}

),

-- A window here, not edge_events: it ranks only the events that carry a utm_source, and
-- edge_events would read the JSON of every event three times.
first_touch as (

    select
        person_id,
        utm_source as first_utm_source,
        row_number() over (partition by person_id order by event_time, event_id) as position
    from (
        select person_id, event_time, event_id, {{ json_text('properties', 'utm_source') }} as utm_source
        from events
    ) as tagged
    where utm_source is not null

),

summary as (

    select
        person_id,
        min(event_time) as first_seen_at,
        max(event_time) as last_seen_at,
        count(*) as event_count,
        max(case when user_id is not null then 1 else 0 end) = 1 as is_identified,
        count(distinct anonymous_id) as anonymous_id_count,
        max(loaded_at) as loaded_at
    from events
    group by person_id

),

final as (

    select
        summary.person_id,
        summary.first_seen_at,
        summary.last_seen_at,
        summary.event_count,
        summary.is_identified,
        summary.anonymous_id_count,
        first_events.platform as first_platform,
        first_events.country,
        first_touch.first_utm_source,
        summary.loaded_at
    from summary
    inner join first_events
        on summary.person_id = first_events.person_id
    left join first_touch
        on summary.person_id = first_touch.person_id
        and first_touch.position = 1

)

select * from final
