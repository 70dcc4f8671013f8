-- Sessions per person: a new session starts when more than 30 minutes have passed since the
-- person's previous event (a gap of exactly 30 minutes stays in the session). Events at the same
-- instant are ordered by event_id so the numbering is deterministic (macros/events.sql).
-- A view, read only by fct_events: the full event rows are stored once, in fct_events.
{{ config(materialized='view') }}

with

events as (

    select * from {{ ref('int_events_stitched') }}

),

{{ sessionized('events', var('session_inactivity_minutes', 30)) }}

select * from sessionized
