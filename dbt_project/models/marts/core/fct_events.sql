-- One row per unique, contract-valid event, with its person and session.
--
-- Incremental, by person: a run deletes the events of every person that what changed in
-- stg_raw__events touches (macros/events.sql, touched_persons: new, gone or replaced events, and
-- every event sharing an anonymous id with one), then stitches and sessionizes all the events of
-- those persons again. Every other person's events and sessions are unchanged, so they are not
-- rewritten. `dbt build --full-refresh` rebuilds it from scratch; so must a change of the
-- session_inactivity_minutes var.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        pre_hook="""
            {% if is_incremental() %}
            delete from {{ this }}
            where person_id in (
                {{ touched_persons(this, ref('stg_raw__events'), ref('int_events_stitched')) }}
            )
            {% endif %}
        """,
    )
}}
-- depends_on: {{ ref('stg_raw__events') }}
-- depends_on: {{ ref('int_events_stitched') }}

with

{% if is_incremental() %}

-- After the pre-hook, the stitched events with no row here are exactly all the events of the
-- touched persons.
events as (

    select stitched.*
    from {{ ref('int_events_stitched') }} as stitched
    where not exists (
        select 1 from {{ this }} as stored where stored.event_id = stitched.event_id
    )

),

{{ sessionized('events', var('session_inactivity_minutes', 30)) }},

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
        {{ loaded_at() }} as loaded_at
    from sessionized

)

select * from final
