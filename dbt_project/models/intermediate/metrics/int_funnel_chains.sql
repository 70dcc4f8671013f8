{{ config(materialized='table') }}
-- One row per funnel and per occurrence of its first step (a "start"): the deepest chain of later
-- steps from that start, as ClickHouse's windowFunnel in its default mode. Step k is the earliest
-- event of step k's name at or after step k-1 (ties count) and at most the conversion window after
-- the start (inclusive); taking the earliest each time is optimal, so `level` is the deepest chain
-- from this start. `order: strict` instead needs each step to be the person's very next event
-- (PostHog's strict funnels); `granularity: day` compares dates, not times (dbt_product_analytics).
-- Columns step_<k>_at run up to the longest funnel's length (null past a funnel's own steps).
{%- set cfg = metrics_config() %}
{%- set width = metrics_max_steps() %}
with

events as (

    select * from {{ ref('int_metrics_events') }}

),

{%- for funnel in cfg['funnels'] %}
{%- set f = 'funnel_' ~ loop.index %}
{%- set steps = funnel['steps'] %}
{%- set strict = funnel.get('order', 'ordered') == 'strict' %}
{%- set window = funnel.get('conversion_window_seconds') %}

{{ f }}_events as (

    select
        person_id,
        event_id,
        event_name,
        {%- if funnel.get('granularity', 'timestamp') == 'day' %}
        cast(event_date as {{ dbt.type_timestamp() }}) as event_at
        {%- else %}
        event_time as event_at
        {%- endif %}
        {%- if strict %},
        row_number() over (partition by person_id order by event_time, event_id) as event_seq
        {%- endif %}
    from events
    {%- if not strict %}
    where event_name in ({% for step in steps | unique %}{{ metrics_literal(step) }}{% if not loop.last %}, {% endif %}{% endfor %})
    {%- endif %}

),

{{ f }}_step_1 as (

    select
        person_id,
        event_id as start_event_id,
        event_at as start_at,
        event_at as step_at
        {%- if strict %},
        event_seq as step_seq
        {%- endif %}
    from {{ f }}_events
    where event_name = {{ metrics_literal(steps[0]) }}

),
{%- for step in steps[1:] %}
{%- set k = loop.index + 1 %}

{{ f }}_step_{{ k }} as (

    select
        previous.person_id,
        previous.start_event_id,
        previous.start_at,
        min(next_event.event_at) as step_at
        {%- if strict %},
        min(next_event.event_seq) as step_seq
        {%- endif %}
    from {{ f }}_step_{{ k - 1 }} as previous
    inner join {{ f }}_events as next_event
        on next_event.person_id = previous.person_id
        and next_event.event_name = {{ metrics_literal(step) }}
        {%- if strict %}
        and next_event.event_seq = previous.step_seq + 1
        {%- else %}
        and next_event.event_at >= previous.step_at
        {%- endif %}
        {%- if window is not none %}
        and next_event.event_at <= {{ dbt.dateadd('second', window, 'previous.start_at') }}
        {%- endif %}
    group by previous.person_id, previous.start_event_id, previous.start_at

),
{%- endfor %}

{{ f }}_chains as (

    select
        {{ metrics_literal(funnel['name']) }} as funnel_name,
        step_1.person_id,
        step_1.start_event_id,
        step_1.start_at,
        {%- if steps | length == 1 %}
        1 as level,
        {%- else %}
        case
            {%- for k in range(steps | length, 1, -1) %}
            when step_{{ k }}.step_at is not null then {{ k }}
            {%- endfor %}
            else 1
        end as level,
        {%- endif %}
        {%- for k in range(1, width + 1) %}
        {%- if k <= steps | length %}
        step_{{ k }}.step_at as step_{{ k }}_at{% if not loop.last %},{% endif %}
        {%- else %}
        cast(null as {{ dbt.type_timestamp() }}) as step_{{ k }}_at{% if not loop.last %},{% endif %}
        {%- endif %}
        {%- endfor %}
    from {{ f }}_step_1 as step_1
    {%- for k in range(2, steps | length + 1) %}
    left join {{ f }}_step_{{ k }} as step_{{ k }}
        on step_{{ k }}.start_event_id = step_1.start_event_id
    {%- endfor %}

),
{%- endfor %}

final as (

    {%- for funnel in cfg['funnels'] %}
    select * from funnel_{{ loop.index }}_chains
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as funnel_name,
        cast(null as {{ dbt.type_string() }}) as person_id,
        cast(null as {{ dbt.type_string() }}) as start_event_id,
        cast(null as {{ dbt.type_timestamp() }}) as start_at,
        cast(null as {{ dbt.type_int() }}) as level,
        cast(null as {{ dbt.type_timestamp() }}) as step_1_at
    where 1 = 0
    {%- endfor %}

)

select * from final
