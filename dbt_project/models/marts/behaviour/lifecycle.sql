-- PostHog's lifecycle per granularity (day, week from Monday; UTC) and period, over persons active
-- in a period (any event, or behaviour.lifecycle.event):
--   new: active, and first seen (dim_users.first_seen_at, any event) in this period;
--   returning: active, not new, and active in the previous period;
--   resurrecting: active, not new, and not active in the previous period;
--   dormant: active in the previous period but not in this one (PostHog plots it negative).
{%- set cfg = behaviour_config()['lifecycle'] %}
with

events as {{ inline_cte() }} (

    select person_id, event_time
    from {{ ref('fct_events') }}
    {%- if cfg['event'] != 'any' %}
    where event_name = {{ metrics_literal(cfg['event']) }}
    {%- endif %}

),

users as (

    select person_id, first_seen_at from {{ ref('dim_users') }}

),

bounds as (

    select
        cast(min(event_time) as date) as first_date,
        cast(max(event_time) as date) as last_date
    from {{ ref('fct_events') }}

),

day_offsets as (

    select generated_number - 1 as day_offset
    from ({{ dbt.generate_series(16384) }}) as series

),

days as (

    select cast({{ dbt.dateadd('day', 'day_offsets.day_offset', 'bounds.first_date') }} as date) as day
    from bounds
    cross join day_offsets
    where day_offsets.day_offset <= {{ dbt.datediff('bounds.first_date', 'bounds.last_date', 'day') }}

),

-- Each person's active days, read from the events once for every granularity: a week is active
-- when one of its days is, so the periods below come from these rows, not from every event again.
active_days as (

    select distinct
        person_id,
        {{ metrics_period_start('day', 'event_time') }} as day
    from events

),

{%- for grain in cfg['granularities'] %}

periods_{{ grain }} as (

    select distinct
        {{ metrics_literal(grain) }} as granularity,
        {{ metrics_period_start(grain, 'day') }} as period_start,
        cast({{ dbt.dateadd(grain, -1, metrics_period_start(grain, 'day')) }} as date) as previous_start
    from days

),

active_{{ grain }} as (

    select distinct
        active_days.person_id,
        {{ metrics_period_start(grain, 'active_days.day') }} as period_start,
        {{ metrics_period_start(grain, 'users.first_seen_at') }} as first_period
    from active_days
    inner join users on active_days.person_id = users.person_id

),

counts_{{ grain }} as (

    select
        periods.granularity,
        periods.period_start,
        count(distinct case when current_period.first_period = periods.period_start
            then current_period.person_id end) as new_persons,
        count(distinct case when current_period.first_period <> periods.period_start
            and previous_period.person_id is not null then current_period.person_id end) as returning_persons,
        count(distinct case when current_period.first_period <> periods.period_start
            and previous_period.person_id is null then current_period.person_id end) as resurrecting_persons
    from periods_{{ grain }} as periods
    left join active_{{ grain }} as current_period
        on current_period.period_start = periods.period_start
    left join active_{{ grain }} as previous_period
        on previous_period.period_start = periods.previous_start
        and previous_period.person_id = current_period.person_id
    group by periods.granularity, periods.period_start

),

dormant_{{ grain }} as (

    select
        periods.period_start,
        count(distinct previous_period.person_id) as dormant_persons
    from periods_{{ grain }} as periods
    inner join active_{{ grain }} as previous_period
        on previous_period.period_start = periods.previous_start
    left join active_{{ grain }} as current_period
        on current_period.period_start = periods.period_start
        and current_period.person_id = previous_period.person_id
    where current_period.person_id is null
    group by periods.period_start

),

final_{{ grain }} as (

    select
        counts.granularity,
        counts.period_start,
        counts.new_persons,
        counts.returning_persons,
        counts.resurrecting_persons,
        coalesce(dormant.dormant_persons, 0) as dormant_persons,
        counts.new_persons + counts.returning_persons + counts.resurrecting_persons as active_persons
    from counts_{{ grain }} as counts
    left join dormant_{{ grain }} as dormant on counts.period_start = dormant.period_start

),

{%- endfor %}

final as (

    {%- for grain in cfg['granularities'] %}
    select * from final_{{ grain }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

)

select * from final
