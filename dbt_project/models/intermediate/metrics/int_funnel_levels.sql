-- One row per funnel and person who did its first step: the person's level (the deepest chain over
-- all their starts), the chain that reached it (the earliest such start, ties by event id) with its
-- step times, and the person's first start (whose breakdown values are the person's segment).
{%- set width = metrics_max_steps() %}
with

chains as (

    select * from {{ ref('int_funnel_chains') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by funnel_name, person_id
            order by level desc, start_at, start_event_id
        ) as chain_rank,
        row_number() over (
            partition by funnel_name, person_id
            order by start_at, start_event_id
        ) as start_rank
    from chains

),

first_starts as (

    select
        funnel_name,
        person_id,
        start_event_id as first_start_event_id,
        start_at as first_started_at
    from ranked
    where start_rank = 1

),

deepest as (

    select * from ranked
    where chain_rank = 1

),

final as (

    select
        deepest.funnel_name,
        deepest.person_id,
        deepest.level,
        first_starts.first_start_event_id,
        first_starts.first_started_at,
        deepest.start_event_id as chain_start_event_id,
        {%- for k in range(1, width + 1) %}
        deepest.step_{{ k }}_at{% if not loop.last %},{% endif %}
        {%- endfor %}
    from deepest
    inner join first_starts
        on deepest.funnel_name = first_starts.funnel_name
        and deepest.person_id = first_starts.person_id

)

select * from final
