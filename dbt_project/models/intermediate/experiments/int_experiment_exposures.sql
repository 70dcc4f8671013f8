{{ config(materialized='table') }}
-- One row per configured experiment and person who did its exposure event with the variant
-- property set: the variant of the person's first such event (ties broken by event_id), when it
-- happened, how many exposure events they had, and whether those carried more than one distinct
-- variant (such persons are counted in experiment_health and left out of every result).
-- Breakdown values (`breakdown_<n>`, n = position in the config's `breakdowns`) are read from the
-- first exposure event, as funnel segments are read from the first step-1 event.
{%- set experiments = experiments_config() %}
{%- set breakdowns = metrics_config()['breakdowns'] %}
with

events as (

    select * from {{ ref('fct_events') }}

),
{%- for experiment in experiments %}
{%- set variant = json_text('properties', experiment['variant_property']) %}

experiment_{{ loop.index }}_exposure_events as (

    select
        {{ metrics_literal(experiment['name']) }} as experiment_name,
        person_id,
        event_id,
        event_time,
        cast({{ variant }} as {{ dbt.type_string() }}) as variant
        {%- for breakdown in breakdowns %},
        cast({{ metrics_breakdown_expr(breakdown) }} as {{ dbt.type_string() }}) as breakdown_{{ loop.index }}
        {%- endfor %}
    from events
    where
        event_name = {{ metrics_literal(experiment['exposure_event']) }}
        and {{ variant }} is not null

),
{%- endfor %}

exposure_events as (

    {%- for experiment in experiments %}
    select * from experiment_{{ loop.index }}_exposure_events
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- else %}
    -- no experiments configured: an empty table with the same columns
    select
        cast(null as {{ dbt.type_string() }}) as experiment_name,
        cast(null as {{ dbt.type_string() }}) as person_id,
        cast(null as {{ dbt.type_string() }}) as event_id,
        cast(null as {{ dbt.type_timestamp() }}) as event_time,
        cast(null as {{ dbt.type_string() }}) as variant
        {%- for breakdown in breakdowns %},
        cast(null as {{ dbt.type_string() }}) as breakdown_{{ loop.index }}
        {%- endfor %}
    where 1 = 0
    {%- endfor %}

),

ranked as (

    select
        *,
        row_number() over (
            partition by experiment_name, person_id order by event_time, event_id
        ) as exposure_rank,
        count(*) over (partition by experiment_name, person_id) as exposure_events,
        min(variant) over (partition by experiment_name, person_id) as lowest_variant,
        max(variant) over (partition by experiment_name, person_id) as highest_variant
    from exposure_events

),

final as (

    select
        experiment_name,
        person_id,
        variant,
        event_time as exposed_at,
        cast(event_time as date) as exposure_date,
        event_id as exposure_event_id,
        exposure_events,
        lowest_variant <> highest_variant as has_multiple_variants
        {%- for breakdown in breakdowns %},
        breakdown_{{ loop.index }}
        {%- endfor %}
    from ranked
    where exposure_rank = 1

)

select * from final
