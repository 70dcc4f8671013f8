-- Every record that broke the event contract: nothing is dropped silently.
with

quarantined as (

    select * from {{ ref('stg_raw__quarantined_events') }}

),

final as (

    select
        event_id,
        reason,
        raw_record,
        source,
        partition_date as day,
        ingested_at
    from quarantined

)

select * from final
