{{ config(materialized='table') }}
-- One row per experiment, metric and exposed person: the person's outcome `value` measured from
-- their exposure, whether the metric's window has fully elapsed by the end of the data
-- (`is_complete`), and the CUPED covariate (`pre_exposure_events`: the person's events of any
-- name in the experiment's pre_period before exposure; null when pre_period is none).
-- Definitions (docs/experiments.md):
--   conversion (event): 1 when the person did `event` at or after exposure and at most `window`
--     after it (inclusive), else 0;
--   conversion (funnel step): 1 when a chain of the funnel (int_funnel_chains) starts at or after
--     exposure and reaches `step` at most `window` after exposure;
--   revenue: the sum of the numeric property over the person's events (of `event`, when given) in
--     the same window; 0 without any;
--   retention (day N): 1 when the person did `return_event` (any event by default) on the UTC day
--     N days after their exposure day.
-- The data end: the midnight after the last UTC day with any event (days land whole).
-- depends_on: {{ ref('int_funnel_chains') }}
{%- set experiments = experiments_config() %}
with

exposures as (

    select * from {{ ref('int_experiment_exposures') }}

),

events as {{ inline_cte() }} (

    select event_id, event_name, event_time, person_id, properties from {{ ref('fct_events') }}

),

data_end as (

    select
        {{ dbt.dateadd('day', 1, 'cast(cast(max(event_time) as date) as ' ~ dbt.type_timestamp() ~ ')') }} as data_end_at,
        cast(max(event_time) as date) as last_event_date
    from events

),
{%- for experiment in experiments %}
{%- set e = 'experiment_' ~ loop.index %}
{%- set pre = experiment.get('pre_period_seconds') %}

{{ e }}_exposures as (

    select * from exposures
    where experiment_name = {{ metrics_literal(experiment['name']) }}

),

{{ e }}_covariate as (

    select
        exposed.person_id,
        {%- if pre %}
        cast(count(before.event_id) as {{ metrics_type_double() }}) as pre_exposure_events
        {%- else %}
        cast(null as {{ metrics_type_double() }}) as pre_exposure_events
        {%- endif %}
    from {{ e }}_exposures as exposed
    {%- if pre %}
    left join events as before
        on
            before.person_id = exposed.person_id
            and before.event_time < exposed.exposed_at
            and before.event_time >= {{ experiments_add_seconds('exposed.exposed_at', -pre) }}
    {%- endif %}
    group by exposed.person_id

),
{%- for metric in experiment['metrics'] %}
{%- set m = e ~ '_metric_' ~ loop.index %}
{%- set window = metric.get('window_seconds') %}
{%- set window_end = experiments_add_seconds('exposed.exposed_at', window or 0) %}
{%- set target_day = 'cast(' ~ dbt.dateadd('day', metric.get('day') or 0, 'exposed.exposure_date') ~ ' as date)' %}

{{ m }} as (

    select
        exposed.person_id,
        {{ metrics_literal(metric['name']) }} as metric_name,
        {{ metrics_literal(metric['type']) }} as metric_type,
        {%- if metric['type'] == 'revenue' %}
        coalesce(sum(outcome.amount), 0) as value,
        {%- elif metric['type'] == 'conversion' and metric.get('funnel') %}
        case when count(outcome.start_event_id) > 0 then 1 else 0 end as value,
        {%- else %}
        case when count(outcome.event_id) > 0 then 1 else 0 end as value,
        {%- endif %}
        {%- if metric['type'] == 'retention' %}
        {{ target_day }} <= data_end.last_event_date as is_complete
        {%- else %}
        {{ window_end }} <= data_end.data_end_at as is_complete
        {%- endif %}
    from {{ e }}_exposures as exposed
    cross join data_end
    {%- if metric['type'] == 'revenue' %}
    left join (
        select
            person_id,
            event_time,
            {{ experiments_to_number(json_text('properties', metric['property'])) }} as amount
        from events
        where
            {{ json_text('properties', metric['property']) }} is not null
            {%- if metric.get('event') %}
            and event_name = {{ metrics_literal(metric['event']) }}
            {%- endif %}
    ) as outcome
        on
            outcome.person_id = exposed.person_id
            and outcome.event_time >= exposed.exposed_at
            and outcome.event_time <= {{ window_end }}
    {%- elif metric['type'] == 'conversion' and metric.get('funnel') %}
    left join {{ ref('int_funnel_chains') }} as outcome
        on
            outcome.funnel_name = {{ metrics_literal(metric['funnel']) }}
            and outcome.person_id = exposed.person_id
            and outcome.step_1_at >= exposed.exposed_at
            and outcome.step_{{ metric['step_index'] }}_at <= {{ window_end }}
    {%- elif metric['type'] == 'conversion' %}
    left join events as outcome
        on
            outcome.person_id = exposed.person_id
            and outcome.event_name = {{ metrics_literal(metric['event']) }}
            and outcome.event_time >= exposed.exposed_at
            and outcome.event_time <= {{ window_end }}
    {%- else %}
    left join events as outcome
        on
            outcome.person_id = exposed.person_id
            and cast(outcome.event_time as date) = {{ target_day }}
            and outcome.event_time >= exposed.exposed_at
            {%- if metric.get('return_event', 'any') != 'any' %}
            and outcome.event_name = {{ metrics_literal(metric['return_event']) }}
            {%- endif %}
    {%- endif %}
    group by
        exposed.person_id,
        exposed.exposed_at,
        exposed.exposure_date,
        data_end.data_end_at,
        data_end.last_event_date

),
{%- endfor %}

{{ e }}_outcomes as (

    {%- for metric in experiment['metrics'] %}
    select * from {{ e }}_metric_{{ loop.index }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),
{%- endfor %}

final as (

    {%- for experiment in experiments %}
    {%- set e = 'experiment_' ~ loop.index %}
    select
        exposed.experiment_name,
        outcome.metric_name,
        outcome.metric_type,
        exposed.person_id,
        exposed.variant,
        exposed.exposed_at,
        exposed.has_multiple_variants,
        cast(outcome.value as {{ metrics_type_double() }}) as value,
        outcome.is_complete,
        covariate.pre_exposure_events
    from {{ e }}_exposures as exposed
    inner join {{ e }}_outcomes as outcome on outcome.person_id = exposed.person_id
    inner join {{ e }}_covariate as covariate on covariate.person_id = exposed.person_id
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- else %}
    -- no experiments configured: an empty table with the same columns
    select
        cast(null as {{ dbt.type_string() }}) as experiment_name,
        cast(null as {{ dbt.type_string() }}) as metric_name,
        cast(null as {{ dbt.type_string() }}) as metric_type,
        cast(null as {{ dbt.type_string() }}) as person_id,
        cast(null as {{ dbt.type_string() }}) as variant,
        cast(null as {{ dbt.type_timestamp() }}) as exposed_at,
        cast(null as {{ dbt.type_boolean() }}) as has_multiple_variants,
        cast(null as {{ metrics_type_double() }}) as value,
        cast(null as {{ dbt.type_boolean() }}) as is_complete,
        cast(null as {{ metrics_type_double() }}) as pre_exposure_events
    from data_end
    where 1 = 0
    {%- endfor %}

)

select * from final
