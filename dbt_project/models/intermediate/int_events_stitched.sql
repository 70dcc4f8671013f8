-- Every event with its person: the event's own user id when it has one, else the user its
-- anonymous id is linked to, else the anonymous id itself.
-- A view: fct_events is the one table that stores events with their person and session, so the
-- full event rows are written once per build instead of once per layer.
{{ config(materialized='view') }}

with

events as (

    select * from {{ ref('stg_raw__events') }}

),

links as (

    select * from {{ ref('int_identity_links') }}

),

final as (

    select
        events.*,
        coalesce(events.user_id, links.user_id, events.anonymous_id) as person_id
    from events
    left join links
        on events.anonymous_id = links.anonymous_id

)

select * from final
