-- Fails (and so stops the funnel marts from building) when a configured funnel step never occurs in
-- the events; each failing row names the funnel and the step.
select
    funnel_name,
    step_index,
    step_name,
    'funnel ' || funnel_name || ': step ' || cast(step_index as {{ dbt.type_string() }})
        || ' (' || step_name || ') never occurs in fct_events' as problem
from {{ ref('int_funnel_step_occurrences') }}
where occurrences = 0
