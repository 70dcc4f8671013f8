-- Where persons leave each funnel: for the persons whose level stopped at step k (they reached step
-- k but not k + 1; int_funnel_levels), the last event they did in the data, with how many persons
-- and their share of those who stopped at step k.
{%- set funnels = metrics_config()['funnels'] %}
with

events as {{ inline_cte() }} (

    select person_id, event_id, event_time, event_name
    from {{ ref('fct_events') }}

),

levels as (

    select * from {{ ref('int_funnel_levels') }}

),

steps as (

    {%- for funnel in funnels %}
    {%- set outer = loop %}
    {%- for step in funnel['steps'] %}
    select
        {{ metrics_literal(funnel['name']) }} as funnel_name,
        {{ loop.index }} as step_index,
        {{ metrics_literal(step) }} as step_name,
        {{ funnel['steps'] | length }} as funnel_steps
    {%- if not (loop.last and outer.last) %}
    union all
    {%- endif %}
    {%- endfor %}
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as funnel_name,
        cast(null as {{ dbt.type_int() }}) as step_index,
        cast(null as {{ dbt.type_string() }}) as step_name,
        cast(null as {{ dbt.type_int() }}) as funnel_steps
    from events
    where 1 = 0
    {%- endfor %}

),

-- Each person's last event (latest event_time, ties to the greatest event_id).
last_events as (

    {{ edge_events('events', 'person_id', ['person_id', 'event_name as last_event'], last=true) }}

),

dropped as (

    select
        steps.funnel_name,
        steps.step_index,
        steps.step_name,
        levels.person_id
    from levels
    inner join steps
        on levels.funnel_name = steps.funnel_name
        and levels.level = steps.step_index
    where levels.level < steps.funnel_steps

),

counted as (

    select
        dropped.funnel_name,
        dropped.step_index,
        dropped.step_name,
        last_events.last_event,
        count(*) as persons
    from dropped
    inner join last_events on dropped.person_id = last_events.person_id
    group by dropped.funnel_name, dropped.step_index, dropped.step_name, last_events.last_event

),

final as (

    select
        funnel_name,
        step_index,
        step_name,
        last_event,
        persons,
        cast(persons as {{ metrics_type_double() }})
            / sum(persons) over (partition by funnel_name, step_index) as share
    from counted

)

select * from final
