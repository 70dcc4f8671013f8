-- Each configured funnel, step by step, for everyone (`segment_name` = 'all') and per breakdown
-- value. `users` at step k = persons whose level (int_funnel_levels) is at least k; a person's
-- segment is the breakdown's value on their first first-step event ('(none)' when absent).
{%- set cfg = metrics_config() %}
{%- set width = metrics_max_steps() %}
with

steps as (

    select funnel_name, step_index, step_name
    from {{ ref('int_funnel_step_occurrences') }}

),

levels as (

    select * from {{ ref('int_funnel_levels') }}

),

events as (

    select * from {{ ref('int_metrics_events') }}

),

persons as (

    select
        levels.*
        {%- for breakdown in cfg['breakdowns'] %},
        events.breakdown_{{ loop.index }}
        {%- endfor %}
    from levels
    inner join events on levels.first_start_event_id = events.event_id

),

person_segments as (

    select
        funnel_name,
        person_id,
        {{ metrics_literal('all') }} as segment_name,
        {{ metrics_literal('all') }} as segment_value
    from persons
    {%- for breakdown in cfg['breakdowns'] %}
    union all
    select
        funnel_name,
        person_id,
        {{ metrics_literal(breakdown) }} as segment_name,
        coalesce(breakdown_{{ loop.index }}, '(none)') as segment_value
    from persons
    {%- endfor %}

),

reached as (

    {%- for k in range(1, width + 1) %}
    select
        funnel_name,
        person_id,
        {{ k }} as step_index,
        {{ dbt.datediff('step_1_at', 'step_' ~ k ~ '_at', 'second') }} as seconds_from_start,
        {%- if k == 1 %}
        cast(null as {{ dbt.type_bigint() }}) as seconds_from_previous
        {%- else %}
        {{ dbt.datediff('step_' ~ (k - 1) ~ '_at', 'step_' ~ k ~ '_at', 'second') }} as seconds_from_previous
        {%- endif %}
    from persons
    where level >= {{ k }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

segment_steps as (

    select
        reached.funnel_name,
        person_segments.segment_name,
        person_segments.segment_value,
        reached.step_index,
        count(*) as users,
        {{ metrics_median('reached.seconds_from_start') }} as median_seconds_from_start,
        {{ metrics_median('reached.seconds_from_previous') }} as median_seconds_from_previous
    from reached
    inner join person_segments
        on reached.funnel_name = person_segments.funnel_name
        and reached.person_id = person_segments.person_id
    group by reached.funnel_name, person_segments.segment_name, person_segments.segment_value, reached.step_index

),

segments as (

    select distinct funnel_name, segment_name, segment_value
    from person_segments

),

grid as (

    select
        steps.funnel_name,
        steps.step_index,
        steps.step_name,
        segments.segment_name,
        segments.segment_value,
        coalesce(segment_steps.users, 0) as users,
        segment_steps.median_seconds_from_start,
        segment_steps.median_seconds_from_previous
    from steps
    inner join segments on steps.funnel_name = segments.funnel_name
    left join segment_steps
        on steps.funnel_name = segment_steps.funnel_name
        and steps.step_index = segment_steps.step_index
        and segments.segment_name = segment_steps.segment_name
        and segments.segment_value = segment_steps.segment_value

),

with_previous as (

    select
        *,
        max(case when step_index = 1 then users end) over (
            partition by funnel_name, segment_name, segment_value
        ) as users_at_start,
        lag(users) over (
            partition by funnel_name, segment_name, segment_value order by step_index
        ) as users_at_previous
    from grid

),

final as (

    select
        funnel_name,
        step_index,
        step_name,
        segment_name,
        segment_value,
        users,
        cast(users as {{ metrics_type_double() }}) / nullif(users_at_start, 0) as conversion_from_start,
        cast(users as {{ metrics_type_double() }}) / nullif(users_at_previous, 0) as conversion_from_previous,
        coalesce(users_at_previous - users, 0) as dropped_off,
        cast(median_seconds_from_start as {{ metrics_type_double() }}) as median_seconds_from_start,
        cast(median_seconds_from_previous as {{ metrics_type_double() }}) as median_seconds_from_previous
    from with_previous

)

select * from final
