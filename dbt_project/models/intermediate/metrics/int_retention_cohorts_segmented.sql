-- The retention matrix for everyone (`segment_name` = 'all') and per breakdown: for each
-- granularity, cohort and period N (0 up to the config's max_periods, and no further than the data
-- reaches), how many of the cohort did the return event in period N exactly and in period N or any
-- later one. A period is complete when the data covers all of it (the last day with events is
-- taken as fully landed, since days are landed whole).
{%- set cfg = metrics_config() %}
{%- set retention = cfg['retention'] %}
{%- set max_periods = retention['max_periods'] %}
{%- set ns = namespace(upper=0) %}
{%- for granularity in retention['granularities'] %}
{%- if max_periods.get(granularity, 0) > ns.upper %}{% set ns.upper = max_periods.get(granularity, 0) %}{% endif %}
{%- endfor %}
with

members as (

    select * from {{ ref('int_retention_members') }}

),

-- Read twice (data_end, return_days); each reads a few columns, and computing the view's
-- breakdowns into a copy of every event was a third of this model's time on Postgres.
events as {{ inline_cte() }} (

    select * from {{ ref('int_metrics_events') }}

),

data_end as (

    select {{ dbt.dateadd('day', 1, 'max(event_date)') }} as covered_until
    from events

),

-- Each member with its breakdown values, a missing value as '(none)'. The counts below group these
-- by grouping sets, one set for everyone and one per breakdown, instead of stacking a copy of every
-- member per segment: in a row of the set of breakdown n, segment_<n> holds the value and every
-- other segment_<m> is null (values are never null here), and in the row for everyone all are null.
member_segments as (

    select
        granularity,
        person_id,
        cohort_start
        {%- for breakdown in cfg['breakdowns'] %},
        coalesce(breakdown_{{ loop.index }}, '(none)') as segment_{{ loop.index }}
        {%- endfor %}
    from members

),

-- One row per person and day with a return event, with the day's last such event: a person returned
-- on a day after becoming a member when that last event is at or after cohort_at, and every event
-- of a day falls in the same period. (A join of members to days, not to every event.)
return_days as (

    select person_id, event_date, max(event_time) as last_event_time
    from events
    {%- if retention['return_event'] != 'any' %}
    where event_name = {{ metrics_literal(retention['return_event']) }}
    {%- endif %}
    group by person_id, event_date

),

member_returns as (

    select distinct
        members.granularity,
        members.person_id,
        members.cohort_start,
        {%- for granularity in retention['granularities'] %}
        {%- if loop.first %}
        case
        {%- endif %}
            when members.granularity = {{ metrics_literal(granularity) }} then
                {{ metrics_periods_between(granularity, 'members.cohort_start', metrics_period_start(granularity, 'return_days.event_date')) }}
        {%- if loop.last %}
        end as period_number
        {%- endif %}
        {%- endfor %}
    from members
    inner join return_days
        on members.person_id = return_days.person_id
        and return_days.last_event_time >= members.cohort_at

),

member_last_return as (

    select granularity, person_id, cohort_start, max(period_number) as last_period_number
    from member_returns
    group by granularity, person_id, cohort_start

),

cohorts as (

    select
        granularity,
        {{ metrics_segment_columns() }},
        cohort_start,
        count(*) as cohort_users
    from member_segments
    group by {{ metrics_segment_sets('granularity, cohort_start') }}

),

period_numbers as (

    select generated_number - 1 as period_number
    from ({{ dbt.generate_series(ns.upper + 1) }}) as series

),

grid as (

    select
        cohorts.*,
        period_numbers.period_number,
        case
            {%- for granularity in retention['granularities'] %}
            when cohorts.granularity = {{ metrics_literal(granularity) }}
                then {{ dbt.dateadd(granularity, 'period_numbers.period_number + 1', 'cohorts.cohort_start') }}
            {%- endfor %}
        end as period_end,
        case
            {%- for granularity in retention['granularities'] %}
            when cohorts.granularity = {{ metrics_literal(granularity) }}
                then {{ dbt.dateadd(granularity, 'period_numbers.period_number', 'cohorts.cohort_start') }}
            {%- endfor %}
        end as period_start,
        case
            {%- for granularity in retention['granularities'] %}
            when cohorts.granularity = {{ metrics_literal(granularity) }} then {{ max_periods.get(granularity, 0) }}
            {%- endfor %}
        end as max_period_number
    from cohorts
    cross join period_numbers

),

-- Retained counts without crossing every member with every period (which at 1M persons made this
-- model most of the dbt build): the exact-period count joins each member to its return periods;
-- the "period N or later" count first counts members by their last return period (each member has
-- one), then sums those counts over last periods >= N on the grid. A member is one row of
-- member_segments and has at most one row per period in member_returns, so count(*) counts persons.
retained_exact as (

    select
        member_segments.granularity,
        {{ metrics_segment_columns() }},
        member_segments.cohort_start,
        member_returns.period_number,
        count(*) as retained_users
    from member_segments
    inner join member_returns
        on member_segments.granularity = member_returns.granularity
        and member_segments.person_id = member_returns.person_id
        and member_segments.cohort_start = member_returns.cohort_start
    group by {{ metrics_segment_sets(
        'member_segments.granularity, member_segments.cohort_start, member_returns.period_number'
    ) }}

),

last_return_counts as (

    select
        member_segments.granularity,
        {{ metrics_segment_columns() }},
        member_segments.cohort_start,
        member_last_return.last_period_number,
        count(*) as members_with_last_return
    from member_segments
    inner join member_last_return
        on member_segments.granularity = member_last_return.granularity
        and member_segments.person_id = member_last_return.person_id
        and member_segments.cohort_start = member_last_return.cohort_start
    group by {{ metrics_segment_sets(
        'member_segments.granularity, member_segments.cohort_start,'
        ~ ' member_last_return.last_period_number'
    ) }}

),

retained_unbounded as (

    select
        grid.granularity,
        grid.segment_name,
        grid.segment_value,
        grid.cohort_start,
        grid.period_number,
        cast(sum(last_return_counts.members_with_last_return) as {{ dbt.type_bigint() }})
            as retained_users_unbounded
    from grid
    inner join last_return_counts
        on grid.granularity = last_return_counts.granularity
        and grid.segment_name = last_return_counts.segment_name
        and grid.segment_value = last_return_counts.segment_value
        and grid.cohort_start = last_return_counts.cohort_start
        and last_return_counts.last_period_number >= grid.period_number
    group by
        grid.granularity,
        grid.segment_name,
        grid.segment_value,
        grid.cohort_start,
        grid.period_number

),

final as (

    select
        grid.granularity,
        grid.segment_name,
        grid.segment_value,
        grid.cohort_start,
        grid.period_number,
        grid.cohort_users,
        coalesce(retained_exact.retained_users, 0) as retained_users,
        coalesce(retained_unbounded.retained_users_unbounded, 0) as retained_users_unbounded,
        cast(coalesce(retained_exact.retained_users, 0) as {{ metrics_type_double() }})
            / grid.cohort_users as retention_rate,
        grid.period_end <= data_end.covered_until as is_complete
    from grid
    cross join data_end
    left join retained_exact
        on grid.granularity = retained_exact.granularity
        and grid.segment_name = retained_exact.segment_name
        and grid.segment_value = retained_exact.segment_value
        and grid.cohort_start = retained_exact.cohort_start
        and grid.period_number = retained_exact.period_number
    left join retained_unbounded
        on grid.granularity = retained_unbounded.granularity
        and grid.segment_name = retained_unbounded.segment_name
        and grid.segment_value = retained_unbounded.segment_value
        and grid.cohort_start = retained_unbounded.cohort_start
        and grid.period_number = retained_unbounded.period_number
    where grid.period_number <= grid.max_period_number
        and grid.period_start < data_end.covered_until

)

select * from final
