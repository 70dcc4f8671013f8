-- Per first-touch channel, landing event and funnel: persons, the persons who reached the funnel's
-- last step (level = number of steps in int_funnel_levels) and the conversion rate.
{%- set funnels = metrics_config()['funnels'] %}
with

touches as (

    select * from {{ ref('int_persons_first_touch') }}

),

levels as (

    select * from {{ ref('int_funnel_levels') }}

),

funnels as (

    {%- for funnel in funnels %}
    select {{ metrics_literal(funnel['name']) }} as funnel_name, {{ funnel['steps'] | length }} as funnel_steps
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- else %}
    select cast(null as {{ dbt.type_string() }}) as funnel_name, cast(null as {{ dbt.type_int() }}) as funnel_steps
    from touches
    where 1 = 0
    {%- endfor %}

),

final as (

    select
        touches.channel,
        touches.landing_event,
        funnels.funnel_name,
        count(*) as persons,
        count(levels.person_id) as converted_persons,
        cast(count(levels.person_id) as {{ metrics_type_double() }}) / count(*) as conversion_rate
    from touches
    cross join funnels
    left join levels
        on levels.person_id = touches.person_id
        and levels.funnel_name = funnels.funnel_name
        and levels.level = funnels.funnel_steps
    group by touches.channel, touches.landing_event, funnels.funnel_name

)

select * from final
