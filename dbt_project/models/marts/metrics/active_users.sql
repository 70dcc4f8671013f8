-- Daily, weekly and monthly active persons (any event counts), for every UTC day from the first to
-- the last day with events: wau counts distinct persons active in the 7 days ending that day, mau in
-- the 30 days ending that day; stickiness = dau / mau.
with

events as (

    select * from {{ ref('int_metrics_events') }}

),

person_days as (

    select distinct person_id, event_date as activity_date
    from events

),

bounds as (

    select min(activity_date) as first_date, max(activity_date) as last_date
    from person_days

),

day_offsets as (

    {#- 16384 days (45 years) is the widest span a warehouse here will hold. #}
    select generated_number - 1 as day_offset
    from ({{ dbt.generate_series(16384) }}) as series

),

days as (

    select cast({{ dbt.dateadd('day', 'day_offsets.day_offset', 'bounds.first_date') }} as date) as activity_date
    from bounds
    cross join day_offsets
    where day_offsets.day_offset <= {{ dbt.datediff('bounds.first_date', 'bounds.last_date', 'day') }}

),

{#- A person counts in a day's wau (mau) when active on one of the 7 (30) days ending that day, that
    is, when the day lies in [a, a + 6] ([a, a + 29]) for one of their active days a. Each person's
    overlapping or touching ranges are merged into islands; each island adds 1 on its first day and
    takes 1 off after its last, and a running sum over the days gives the count. Exact, and linear
    in the person-days, where joining each day to its trailing window is 7 (30) times that. -#}
{%- for name, width in [('wau', 7), ('mau', 30)] %}

{{ name }}_gaps as (

    select
        person_id,
        activity_date,
        case
            when lag(activity_date) over (partition by person_id order by activity_date) is null
                then 1
            when {{ dbt.datediff(
                    'lag(activity_date) over (partition by person_id order by activity_date)',
                    'activity_date', 'day') }} > {{ width }}
                then 1
            else 0
        end as starts_island
    from person_days

),

{{ name }}_islands as (

    select
        person_id,
        activity_date,
        sum(starts_island) over (
            partition by person_id order by activity_date
            rows between unbounded preceding and current row
        ) as island
    from {{ name }}_gaps

),

{{ name }}_changes as (

    select min(activity_date) as change_date, 1 as change
    from {{ name }}_islands
    group by person_id, island

    union all

    select
        cast({{ dbt.dateadd('day', width, 'max(activity_date)') }} as date) as change_date,
        -1 as change
    from {{ name }}_islands
    group by person_id, island

),

{{ name }}_daily as (

    select
        days.activity_date,
        sum(coalesce(changes.change, 0)) over (
            order by days.activity_date rows between unbounded preceding and current row
        ) as persons
    from days
    left join (
        select change_date, sum(change) as change
        from {{ name }}_changes
        group by change_date
    ) as changes
        on changes.change_date = days.activity_date

),
{%- endfor %}

dau as (

    select activity_date, count(*) as dau
    from person_days
    group by activity_date

),

activity as (

    select
        days.activity_date,
        cast(coalesce(dau.dau, 0) as {{ dbt.type_bigint() }}) as dau,
        cast(wau_daily.persons as {{ dbt.type_bigint() }}) as wau,
        cast(mau_daily.persons as {{ dbt.type_bigint() }}) as mau
    from days
    left join dau on dau.activity_date = days.activity_date
    inner join wau_daily on wau_daily.activity_date = days.activity_date
    inner join mau_daily on mau_daily.activity_date = days.activity_date

),

final as (

    select
        activity_date,
        dau,
        wau,
        mau,
        cast(dau as {{ metrics_type_double() }}) / nullif(mau, 0) as stickiness
    from activity

)

select * from final
