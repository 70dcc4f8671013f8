-- Per abandonment pair with an item_property: each item's starts, abandoned starts, abandonment rate
-- and abandoned value, ranked by abandoned starts (most-abandoned first).
with

starts as (

    select * from {{ ref('int_abandonment_starts') }}
    where item is not null

),

counted as (

    select
        pair_name,
        item,
        count(*) as started,
        cast(count(*) - sum(is_completed) as {{ dbt.type_int() }}) as abandoned,
        sum(case when is_completed = 0 then start_value end) as abandoned_value
    from starts
    group by pair_name, item

),

final as (

    select
        pair_name,
        row_number() over (partition by pair_name order by abandoned desc, abandoned_value desc, item) as item_rank,
        item,
        started,
        abandoned,
        cast(abandoned as {{ metrics_type_double() }}) / started as abandonment_rate,
        abandoned_value
    from counted

)

select * from final
