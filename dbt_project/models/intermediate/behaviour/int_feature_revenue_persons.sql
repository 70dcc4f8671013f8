-- One row per feature and signed-up person whose adoption window has elapsed by the data end: the
-- person-level input of feature_revenue_impact (orchestration/behaviour, ml/revenue_impact.py;
-- docs/behaviour.md defines every column).
--   adopted: used the feature at or after signup and at most adoption_window after it (inclusive).
--   revenue / converted: the sum of behaviour.revenue_property over the person's events after the
--     adoption window and at most outcome_window later, (signup + A, signup + A + O]; converted is 1
--     when some event in that window carried revenue > 0. Measured after the adoption window so
--     that revenue earned before (or while) the person adopted is not credited to the feature.
--   in_population: the outcome window has elapsed too (signup + A + O <= data end); only these
--     persons are compared. The others count as current adopters only.
--   segment: the stratum's segment, the features breakdowns read on the signup event joined as
--     'name=value' with ', ' ((none) for a missing value; 'all' without breakdowns).
-- The data end: the midnight after the last UTC day with any event (days land whole).
{%- set cfg = behaviour_config() %}
{%- set breakdowns = cfg['features']['breakdowns'] %}
{%- set adoption = cfg['revenue_impact']['adoption_window_seconds'] %}
{%- set outcome = cfg['revenue_impact']['outcome_window_seconds'] %}
with

events as {{ inline_cte() }} (

    select event_id, person_id, event_name, event_time, platform, country, source, properties
    from {{ ref('fct_events') }}

),

data_end as (

    select
        {{ dbt.dateadd('day', 1, 'cast(cast(max(event_time) as date) as ' ~ dbt.type_timestamp() ~ ')') }} as data_end_at
    from events

),

first_signups as (

    {{ behaviour_signups() }}

),

signups as (

    select
        first_signups.person_id,
        first_signups.signed_up_at,
        {{ metrics_period_start('week', 'first_signups.signed_up_at') }} as cohort_week,
        {%- if breakdowns %}
        {%- for breakdown in breakdowns %}
        {{ metrics_literal(breakdown ~ '=') }} || coalesce(first_signups.breakdown_{{ loop.index }}, '(none)')
        {%- if not loop.last %} || ', ' ||{% endif %}
        {%- endfor %} as segment,
        {%- else %}
        'all' as segment,
        {%- endif %}
        {{ experiments_add_seconds('first_signups.signed_up_at', adoption) }} as adoption_ends_at,
        {{ experiments_add_seconds('first_signups.signed_up_at', adoption + outcome) }} as outcome_ends_at,
        data_end.data_end_at
    from first_signups
    cross join data_end

),

eligible as (

    select * from signups
    where adoption_ends_at <= data_end_at

),

feature_list as (

    {{ behaviour_feature_list() }}

),

early_uses as (

    select
        eligible.person_id,
        events.event_name as feature,
        min(events.event_time) as first_used_at
    from eligible
    inner join events
        on
            events.person_id = eligible.person_id
            and events.event_time >= eligible.signed_up_at
            and events.event_time <= eligible.adoption_ends_at
    inner join feature_list on events.event_name = feature_list.feature
    group by eligible.person_id, events.event_name

),

outcomes as (

    select
        eligible.person_id,
        coalesce(sum(revenue.amount), 0) as revenue,
        max(case when revenue.amount > 0 then 1 else 0 end) as converted
    from eligible
    inner join (
        select
            person_id,
            event_time,
            {{ behaviour_json_number('properties', cfg['revenue_property']) }} as amount
        from events
    ) as revenue
        on
            revenue.person_id = eligible.person_id
            and revenue.event_time > eligible.adoption_ends_at
            and revenue.event_time <= eligible.outcome_ends_at
    where revenue.amount is not null
    group by eligible.person_id

),

final as (

    select
        feature_list.feature,
        eligible.person_id,
        eligible.signed_up_at,
        eligible.cohort_week,
        eligible.segment,
        case when eligible.outcome_ends_at <= eligible.data_end_at then 1 else 0 end as in_population,
        case when early_uses.first_used_at is not null then 1 else 0 end as adopted,
        early_uses.first_used_at,
        coalesce(outcomes.converted, 0) as converted,
        cast(coalesce(outcomes.revenue, 0) as {{ metrics_type_double() }}) as revenue
    from eligible
    cross join feature_list
    left join early_uses
        on
            eligible.person_id = early_uses.person_id
            and feature_list.feature = early_uses.feature
    left join outcomes on eligible.person_id = outcomes.person_id

)

select * from final
