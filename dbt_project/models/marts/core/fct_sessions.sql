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

ordered as (

    select
        *,
        row_number() over (partition by session_id order by event_time, event_id) as position
    from events

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
        ordered.event_name as first_event,
        ordered.platform,
        ordered.country,
        aggregated.loaded_at
    from aggregated
    inner join ordered
        on aggregated.session_id = ordered.session_id
        and ordered.position = 1

)

select * from final
