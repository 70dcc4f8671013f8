-- Contract-valid events, typed, each event_id once. A re-sent event (same event_id) keeps the
-- copy that landed first (the smallest landing_id; then the earliest partition, then the earliest
-- time). Rows landed before landing ids count as landed before any other.
--
-- Incremental, by landing (macros/landings.sql): a run rebuilds the event_ids that the landings
-- after its newest landing_id brought, and those of its rows whose day such a landing replaced
-- (their copy is gone: the event may now have another copy, or none). For each it chooses the copy
-- among all of raw.events as a full build would. Rows of other days are not rewritten.
-- `dbt build --full-refresh` rebuilds it from scratch.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ stg_raw__events_pre_hook() }}",
        indexes=postgres_indexes([{'columns': ['landing_id']}]),
        post_hook="{{ drop_landing_work_table() }}",
    )
}}

{%- set watermark = landing_watermark() %}

with

source as {{ inline_cte(watermark is none) }} (

    select * from {{ source('raw', 'events') }}
    where quarantine_reason is null
    {% if watermark is not none %}
        and event_id in (select event_id from {{ landing_work_table() }})
    {% endif %}

),

-- Most events arrive once. Only the event_ids with several copies go through the window that ranks
-- copies: ranking every event was most of this model's time at 40M events (bench/README.md).
repeated as (

    select event_id
    from source
    group by event_id
    having count(*) > 1

),

first_copies as (

    select source.*, 1 as copy_number
    from source
    where not exists (select 1 from repeated where repeated.event_id = source.event_id)

    union all

    select *
    from (
        select
            source.*,
            row_number() over (
                partition by event_id
                order by coalesce(landing_id, 0), partition_date, event_time
            ) as copy_number
        from source
        where exists (select 1 from repeated where repeated.event_id = source.event_id)
    ) as ranked
    where copy_number = 1

),

final as (

    select
        cast(event_id as {{ dbt.type_string() }}) as event_id,
        cast(event_name as {{ dbt.type_string() }}) as event_name,
        cast(event_time as {{ dbt.type_timestamp() }}) as event_time,
        cast(user_id as {{ dbt.type_string() }}) as user_id,
        cast(anonymous_id as {{ dbt.type_string() }}) as anonymous_id,
        cast(session_id as {{ dbt.type_string() }}) as source_session_id,
        cast(platform as {{ dbt.type_string() }}) as platform,
        cast(country as {{ dbt.type_string() }}) as country,
        cast(properties as {{ dbt.type_string() }}) as properties,
        cast(source as {{ dbt.type_string() }}) as source,
        cast(ingested_at as {{ dbt.type_timestamp() }}) as ingested_at,
        cast(partition_date as date) as partition_date,
        cast(landing_id as {{ dbt.type_bigint() }}) as landing_id
    from first_copies

)

select * from final
