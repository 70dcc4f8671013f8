-- One row per session (see int_events_sessionized for the 30-minute rule).
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

    {{ edge_events('events', 'session_id', ['session_id', 'event_name', 'platform', 'country']) }}

),

aggregated as (

    select
        session_id,
        person_id,
        min(event_time) as started_at,
        max(event_time) as ended_at,
        count(*) as event_count,
        max(loaded_at) as loaded_at
    from events
    group by session_id, person_id

),

final as (

    select
        aggregated.session_id,
        aggregated.person_id,
        aggregated.started_at,
        aggregated.ended_at,
        {{ dbt.datediff('aggregated.started_at', 'aggregated.ended_at', 'second') }}
            as duration_seconds,
        aggregated.event_count,
        first_events.event_name as first_event,
        first_events.platform,
        first_events.country,
        aggregated.loaded_at
    from aggregated
    inner join first_events
        on aggregated.session_id = first_events.session_id

)

select * from final
