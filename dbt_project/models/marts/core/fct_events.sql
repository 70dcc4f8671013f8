-- One row per unique, contract-valid event, with its person and session.
with

events as (

    select * from {{ ref('int_events_sessionized') }}

),

final as (

    select
        event_id,
        event_name,
        event_time,
        user_id,
        anonymous_id,
        person_id,
        session_id,
        source_session_id,
        session_number,
        platform,
        country,
        properties,
        source,
        ingested_at,
        partition_date
    from events

)

select * from final
