-- Retention of everyone: one row per granularity, cohort and period (see int_retention_cohorts_segmented).
with

segmented as (

    select * from {{ ref('int_retention_cohorts_segmented') }}

),

final as (

    select
        granularity,
        cohort_start,
        period_number,
        cohort_users,
        retained_users,
        retained_users_unbounded,
        retention_rate,
        is_complete
    from segmented
    where segment_name = 'all'

)

select * from final
