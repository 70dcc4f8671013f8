-- Every configured funnel step with the number of events of its name: a step that never occurs is
-- almost always a typo, and the test `assert_every_funnel_step_occurs` stops the build on it.
{%- set cfg = metrics_config() %}
with

events as (

    select * from {{ ref('int_metrics_events') }}

),

steps as (

    {%- for funnel in cfg['funnels'] %}
    {%- set funnel_loop = loop %}
    {%- for step in funnel['steps'] %}
    select
        {{ metrics_literal(funnel['name']) }} as funnel_name,
        {{ loop.index }} as step_index,
        {{ metrics_literal(step) }} as step_name
    {%- if not (loop.last and funnel_loop.last) %}
    union all
    {%- endif %}
    {%- endfor %}
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as funnel_name,
        cast(null as {{ dbt.type_int() }}) as step_index,
        cast(null as {{ dbt.type_string() }}) as step_name
    where 1 = 0
    {%- endfor %}

),

counts as (

    select
        event_name,
        count(*) as occurrences
    from events
    group by event_name

),

final as (

    select
        steps.funnel_name,
        steps.step_index,
        steps.step_name,
        coalesce(counts.occurrences, 0) as occurrences
    from steps
    left join counts on steps.step_name = counts.event_name

)

select * from final
