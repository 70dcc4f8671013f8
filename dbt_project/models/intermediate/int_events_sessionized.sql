-- Sessions per person: a new session starts when more than 30 minutes have passed since the
-- person's previous event (a gap of exactly 30 minutes stays in the session). Events at the same
-- instant are ordered by event_id so the numbering is deterministic.
{% set inactivity_minutes = var('session_inactivity_minutes', 30) %}

with

events as (

    select * from {{ ref('int_events_stitched') }}

),

with_previous as (

    select
        *,
        lag(event_time) over (
            partition by person_id order by event_time, event_id
        ) as previous_event_time
    from events

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
        ) as session_number
    from flagged

),

final as (

    select
        *,
        {{ dbt.hash(dbt.concat(['person_id', "'#'", dbt.safe_cast('session_number', dbt.type_string())])) }}
            as session_id
    from numbered

)

select * from final
