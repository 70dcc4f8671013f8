-- One row per person: the first touch, i.e. the person's earliest event after identity stitching
-- (anonymous events included), its name (the landing event) and its utm_* and referrer, with the
-- acquisition channel they give (rules in docs/behaviour.md).
--
-- Incremental, by person (macros/events.sql, person_rebuild_*): a run rebuilds the persons whose
-- fct_events rows it rewrote.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='sync_all_columns',
        pre_hook="{{ delete_person_rebuild(ref('fct_events'), {}) }}",
    )
}}
with

events as {{ inline_cte(not is_incremental()) }} (

    {{ person_rebuild_events(ref('fct_events'), {}) }}

),

first_touches as (

    {{ edge_events('events', 'person_id', ['person_id', 'event_name', 'properties']) }}

),

tagged as (

    select
        person_id,
        event_name,
        lower({{ json_text('properties', 'utm_source') }}) as utm_source,
        lower({{ json_text('properties', 'utm_medium') }}) as utm_medium,
        {{ json_text('properties', 'utm_campaign') }} as utm_campaign,
        lower({{ json_text('properties', 'referrer') }}) as referrer
    from first_touches

),

final as (

    select
        person_id,
        event_name as landing_event,
        utm_source,
        utm_medium,
        utm_campaign,
        referrer,
        {{ behaviour_channel('utm_source', 'utm_medium', 'referrer') }} as channel,
        {{ person_rebuild_columns(ref('fct_events'), {}) }}
    from tagged

)

select * from final
