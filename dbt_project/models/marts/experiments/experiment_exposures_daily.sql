-- Exposure over time: per experiment, UTC day of first exposure and variant, the persons first
-- exposed that day and the running total. Persons whose exposures carried more than one variant
-- are counted apart (`multi_variant_persons`, under the variant of their first exposure) and left
-- out of `persons`, as they are left out of every result.
with

exposures as (

    select * from {{ ref('int_experiment_exposures') }}

),

daily as (

    select
        experiment_name,
        exposure_date,
        variant,
        cast(sum(case when has_multiple_variants then 0 else 1 end) as {{ dbt.type_bigint() }}) as persons,
        cast(sum(case when has_multiple_variants then 1 else 0 end) as {{ dbt.type_bigint() }}) as multi_variant_persons
    from exposures
    group by experiment_name, exposure_date, variant

),

final as (

    select
        experiment_name,
        exposure_date,
        variant,
        persons,
        multi_variant_persons,
        cast(sum(persons) over (
            partition by experiment_name, variant
            order by exposure_date
            rows between unbounded preceding and current row
        ) as {{ dbt.type_bigint() }}) as cumulative_persons
    from daily

)

select * from final
