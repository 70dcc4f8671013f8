-- Retention per breakdown value (the value on the event that put the person in the cohort).
with

segmented as (

    select * from {{ ref('int_retention_cohorts_segmented') }}

),

final as (

    select
        granularity,
        segment_name,
        segment_value,
        cohort_start,
        period_number,
        cohort_users,
        retained_users,
        retained_users_unbounded,
        retention_rate,
        is_complete
    from segmented
    where segment_name <> 'all'

)

select * from final
