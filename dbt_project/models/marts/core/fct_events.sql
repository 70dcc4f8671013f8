-- One row per unique, contract-valid event, with its person and session.
--
-- Incremental, by landing and by person (macros/landings.sql, fct_events_pre_hook): a run finds the
-- persons that the landings after its newest landing_id touch (new events, events whose day was
-- landed again, and events whose anonymous id now points to another person), and for each the
-- first changed event. A person's events before the session that the change may continue are
-- kept as they are; from that session on, their events are stitched and sessionized again, the
-- session numbers going on from the kept ones. Every other person's events are not rewritten.
-- `dbt build --full-refresh` rebuilds it from scratch; so must a change of the
-- session_inactivity_minutes var.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ fct_events_pre_hook() }}",
        indexes=postgres_indexes([
            {'columns': ['person_id']}, {'columns': ['loaded_at']}, {'columns': ['landing_id']},
        ]),
        post_hook="{{ drop_landing_work_table() }}",
    )
}}
-- depends_on: {{ ref('stg_raw__events') }}
-- depends_on: {{ ref('int_identity_links') }}
-- depends_on: {{ ref('int_events_stitched') }}

{%- set watermark = landing_watermark() %}

with

{% if watermark is not none %}

-- The touched persons' events from the first one to rebuild on, with the number of sessions
-- before it.
events as (

    select
        stitched.*,
        changes.from_session_number - 1 as sessions_before
    from {{ ref('int_events_stitched') }} as stitched
    inner join {{ landing_work_table() }} as changes
        on stitched.person_id = changes.person_id
    where changes.from_event_id is null
        or stitched.event_time > changes.from_event_time
        or (stitched.event_time = changes.from_event_time
            and stitched.event_id >= changes.from_event_id)

),

{{ sessionized('events', var('session_inactivity_minutes', 30), 'sessions_before') }},

{% else %}

sessionized as (

    select * from {{ ref('int_events_sessionized') }}

),

{% endif %}

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
        partition_date,
        landing_id,
        {{ loaded_at() }} as loaded_at
    from sessionized

)

select * from final
