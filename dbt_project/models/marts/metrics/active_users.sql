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

activity as (

    select
        days.activity_date,
        count(distinct case when person_days.activity_date = days.activity_date then person_days.person_id end) as dau,
        count(distinct case
            when person_days.activity_date > {{ dbt.dateadd('day', -7, 'days.activity_date') }}
                then person_days.person_id
        end) as wau,
        count(distinct person_days.person_id) as mau
    from days
    left join person_days
        on person_days.activity_date <= days.activity_date
        and person_days.activity_date > {{ dbt.dateadd('day', -30, 'days.activity_date') }}
    group by days.activity_date

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
