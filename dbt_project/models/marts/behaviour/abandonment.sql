-- Per start/complete pair (behaviour.abandonment): every start event is completed when the same
-- person did the complete event at or after it, within the window (end included); otherwise it is
-- abandoned. Counts of starts and persons, the abandonment rate (abandoned / started starts), the
-- abandoned value (sum of value_property over abandoned starts) and the average value of abandoned
-- and of completed starts.
with

starts as (

    select * from {{ ref('int_abandonment_starts') }}

),

final as (

    select
        pair_name,
        start_event,
        complete_event,
        count(*) as started,
        cast(sum(is_completed) as {{ dbt.type_int() }}) as completed,
        cast(count(*) - sum(is_completed) as {{ dbt.type_int() }}) as abandoned,
        cast(count(*) - sum(is_completed) as {{ metrics_type_double() }}) / count(*) as abandonment_rate,
        count(distinct person_id) as started_persons,
        count(distinct case when is_completed = 0 then person_id end) as abandoning_persons,
        sum(case when is_completed = 0 then start_value end) as abandoned_value,
        avg(case when is_completed = 0 then start_value end) as avg_abandoned_value,
        avg(case when is_completed = 1 then start_value end) as avg_completed_value,
        {{ metrics_median('seconds_to_complete') }} as median_seconds_to_complete
    from starts
    group by pair_name, start_event, complete_event

)

select * from final
