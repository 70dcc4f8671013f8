-- Daily metric snapshots, one row per UTC day and metric: active_users, new_persons, sessions,
-- revenue (sum of behaviour.revenue_property) and each funnel's conversion (persons whose first
-- step-1 event fell on that day and who reached the last step, int_funnel_levels), with the
-- definition in force when the row was computed. Incremental (delete+insert by day): each run
-- recomputes only the last behaviour.snapshots.recompute_days days it already holds and any newer
-- day, so earlier days keep the values computed under the definitions of their time. A full refresh
-- (dbt build --full-refresh) recomputes every day with today's definitions.
-- The funnel rows read int_funnel_levels only when funnels are configured; the dependency is
-- declared here so that lineage does not depend on the vars a manifest was parsed with.
-- depends_on: {{ ref('int_funnel_levels') }}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['metric_date', 'metric_name'],
) }}
{%- set cfg = behaviour_config() %}
{%- set funnels = metrics_config()['funnels'] %}
with

events as (

    select * from {{ ref('fct_events') }}
    {%- if is_incremental() %}
    where cast(event_time as date) >= (
        select cast({{ dbt.dateadd('day', 1 - cfg['snapshots']['recompute_days'], 'max(metric_date)') }} as date)
        from {{ this }}
    )
    {%- endif %}

),

-- Per person and day first, then per day: the same numbers as count(distinct person_id) per day,
-- which Postgres computes by sorting every event (as in feature_usage).
person_days as (

    select
        cast(event_time as date) as metric_date,
        person_id,
        sum({{ behaviour_json_number('properties', cfg['revenue_property']) }}) as revenue
    from events
    group by cast(event_time as date), person_id

),

daily as (

    select
        metric_date,
        count(*) as active_users,
        sum(revenue) as revenue
    from person_days
    group by metric_date

),

new_persons as (

    select cast(first_seen_at as date) as metric_date, count(*) as new_persons
    from {{ ref('dim_users') }}
    group by cast(first_seen_at as date)

),

sessions as (

    select cast(started_at as date) as metric_date, count(*) as sessions
    from {{ ref('fct_sessions') }}
    group by cast(started_at as date)

),

metrics as (

    select daily.metric_date, 'active_users' as metric_name,
        cast(daily.active_users as {{ metrics_type_double() }}) as metric_value,
        'distinct persons with any event that day' as definition
    from daily
    union all
    select daily.metric_date, 'new_persons',
        cast(coalesce(new_persons.new_persons, 0) as {{ metrics_type_double() }}),
        'persons first seen that day (dim_users.first_seen_at)'
    from daily
    left join new_persons on daily.metric_date = new_persons.metric_date
    union all
    select daily.metric_date, 'sessions',
        cast(coalesce(sessions.sessions, 0) as {{ metrics_type_double() }}),
        'sessions started that day (fct_sessions)'
    from daily
    left join sessions on daily.metric_date = sessions.metric_date
    union all
    select daily.metric_date, 'revenue',
        cast(coalesce(daily.revenue, 0) as {{ metrics_type_double() }}),
        {{ metrics_literal('sum of properties.' ~ cfg['revenue_property']) }}
    from daily
    {%- for funnel in funnels %}
    union all
    select daily.metric_date,
        {{ metrics_literal('funnel_conversion:' ~ funnel['name']) }},
        cast(sum(case when levels.level = {{ funnel['steps'] | length }} then 1 else 0 end)
            as {{ metrics_type_double() }}) / nullif(count(levels.person_id), 0),
        {{ metrics_literal(funnel['steps'] | join(' > ') ~ '; window ' ~ (funnel['conversion_window_seconds'] ~ 's' if funnel['conversion_window_seconds'] else 'none') ~ '; ' ~ funnel.get('order', 'ordered') ~ '; ' ~ funnel.get('granularity', 'timestamp')) }}
    from daily
    left join {{ ref('int_funnel_levels') }} as levels
        on levels.funnel_name = {{ metrics_literal(funnel['name']) }}
        and cast(levels.first_started_at as date) = daily.metric_date
    group by daily.metric_date
    {%- endfor %}

),

final as (

    select
        metric_date,
        metric_name,
        metric_value,
        definition,
        {{ dbt.current_timestamp() }} as computed_at
    from metrics

)

select * from final
