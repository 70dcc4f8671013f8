-- One row per event of each journey path (behaviour.journeys): the anchor event is step 0, the
-- events after it are steps 1..N (direction after) or the events before it steps -N..-1 (before).
-- Per journey, events are first excluded and renamed by the journey's regexes, then consecutive
-- repeats are collapsed (unless collapse_repeats is false), then positioned per person.
--
-- Incremental, by person (macros/events.sql, person_rebuild_*): a run rebuilds the persons whose
-- fct_events rows it rewrote, and everything when the journeys configuration changed.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='sync_all_columns',
        pre_hook="{{ delete_person_rebuild(ref('fct_events'), behaviour_config()['journeys']) }}",
    )
}}
{%- set journeys = behaviour_config()['journeys'] %}
with

events as {{ inline_cte(not is_incremental()) }} (

    {{ person_rebuild_events(ref('fct_events'), journeys) }}

),

{%- if journeys %}

specs as (

    {%- for j in journeys %}
    select
        {{ metrics_literal(j['name']) }} as journey_name,
        {{ metrics_literal(j['direction']) }} as direction,
        {{ metrics_literal(j['event']) }} as anchor_event,
        {{ j['steps'] }} as steps,
        {{ metrics_literal(j['occurrence']) }} as occurrence,
        {{ 1 if j['collapse_repeats'] else 0 }} as collapse_repeats
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

-- Each journey's events after its exclusions and aliases, of the persons with at least one anchor
-- event (the others have no path, so their events need no positions).
mapped as (

    {%- for j in journeys %}
    {%- set journey_event_name -%}
        {%- if j['aliases'] -%}
        case
            {%- for alias in j['aliases'] %}
            when {{ behaviour_regex_matches('event_name', alias['pattern']) }} then {{ metrics_literal(alias['name']) }}
            {%- endfor %}
            else event_name
        end
        {%- else -%}
        event_name
        {%- endif -%}
    {%- endset %}
    {%- set journey_keeps -%}
        {%- if j['exclude'] -%}
        not (
            {%- for pattern in j['exclude'] %}
            {{ behaviour_regex_matches('event_name', pattern) }}{% if not loop.last %} or{% endif %}
            {%- endfor %}
        )
        {%- else -%}
        1 = 1
        {%- endif -%}
    {%- endset %}
    select
        {{ metrics_literal(j['name']) }} as journey_name,
        person_id,
        event_id,
        event_time,
        {{ journey_event_name }} as event_name
    from events
    where {{ journey_keeps }}
        and person_id in (
            select person_id from events
            where {{ journey_keeps }}
                and ({{ journey_event_name }}) = {{ metrics_literal(j['event']) }}
        )
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

with_previous as (

    select
        mapped.*,
        specs.collapse_repeats,
        lag(mapped.event_name) over (
            partition by mapped.journey_name, mapped.person_id
            order by mapped.event_time, mapped.event_id
        ) as previous_event
    from mapped
    inner join specs on mapped.journey_name = specs.journey_name

),

positioned as (

    select
        journey_name,
        person_id,
        event_id,
        event_time,
        event_name,
        row_number() over (
            partition by journey_name, person_id order by event_time, event_id
        ) as position
    from with_previous
    where collapse_repeats = 0
        or previous_event is null
        or previous_event <> event_name

),

anchor_occurrences as (

    select
        positioned.journey_name,
        positioned.person_id,
        positioned.position as anchor_position,
        specs.occurrence,
        row_number() over (
            partition by positioned.journey_name, positioned.person_id
            order by positioned.position
        ) as occurrence_number
    from positioned
    inner join specs
        on positioned.journey_name = specs.journey_name
        and positioned.event_name = specs.anchor_event

),

anchors as (

    select journey_name, person_id, anchor_position
    from anchor_occurrences
    where occurrence = 'every' or occurrence_number = 1

),

final as (

    select
        anchors.journey_name,
        specs.direction,
        specs.anchor_event,
        specs.steps,
        anchors.person_id,
        anchors.person_id || '#' || cast(anchors.anchor_position as {{ dbt.type_string() }}) as path_id,
        positioned.position - anchors.anchor_position as step_number,
        positioned.event_name,
        positioned.event_time,
        {{ person_rebuild_columns(ref('fct_events'), journeys) }}
    from anchors
    inner join specs on anchors.journey_name = specs.journey_name
    inner join positioned
        on anchors.journey_name = positioned.journey_name
        and anchors.person_id = positioned.person_id
        and positioned.position >= anchors.anchor_position
            - case when specs.direction = 'before' then specs.steps else 0 end
        and positioned.position <= anchors.anchor_position
            + case when specs.direction = 'after' then specs.steps else 0 end

)

select * from final

{%- else %}

final as (

    select
        cast(null as {{ dbt.type_string() }}) as journey_name,
        cast(null as {{ dbt.type_string() }}) as direction,
        cast(null as {{ dbt.type_string() }}) as anchor_event,
        cast(null as {{ dbt.type_int() }}) as steps,
        cast(null as {{ dbt.type_string() }}) as person_id,
        cast(null as {{ dbt.type_string() }}) as path_id,
        cast(null as {{ dbt.type_int() }}) as step_number,
        cast(null as {{ dbt.type_string() }}) as event_name,
        cast(null as {{ dbt.type_timestamp() }}) as event_time,
        {{ person_rebuild_columns(ref('fct_events'), journeys) }}
    from events
    where 1 = 0

)

select * from final

{%- endif %}
