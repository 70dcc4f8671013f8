-- One row per session (see int_events_sessionized for the 30-minute rule).
with

events as (

    select * from {{ ref('fct_events') }}

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
        count(*) as event_count
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
        ordered.country
    from aggregated
    inner join ordered
        on aggregated.session_id = ordered.session_id
        and ordered.position = 1

)

select * from final
