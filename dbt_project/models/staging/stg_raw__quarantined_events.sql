-- Records that broke the event contract, as they arrived, with the reason.
with

source as (

    select * from {{ source('raw', 'events') }}
    where quarantine_reason is not null

),

final as (

    select
        cast(event_id as {{ dbt.type_string() }}) as event_id,
        cast(quarantine_reason as {{ dbt.type_string() }}) as reason,
        cast(raw_record as {{ dbt.type_string() }}) as raw_record,
        cast(source as {{ dbt.type_string() }}) as source,
        cast(partition_date as date) as partition_date,
        cast(ingested_at as {{ dbt.type_timestamp() }}) as ingested_at
    from source

)

select * from final
