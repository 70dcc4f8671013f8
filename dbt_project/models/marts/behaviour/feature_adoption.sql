-- For each feature event (behaviour.features.events, or every event that is no funnel step), per
-- signup cohort week (Monday, UTC) and breakdown segment ('all' and each features breakdown, read on
-- the signup event): persons in the cohort, adopters (used the feature at or after their signup),
-- adoption rate and the median days from signup to first use (fractional days).
{%- set cfg = behaviour_config() %}
{%- set breakdowns = cfg['features']['breakdowns'] %}
with

events as {{ inline_cte() }} (

    select * from {{ ref('fct_events') }}

),

first_signups as (

    {{ behaviour_signups() }}

),

signups as (

    select
        *,
        {{ metrics_period_start('week', 'signed_up_at') }} as cohort_week
    from first_signups

),

segments as (

    select person_id, cohort_week, signed_up_at, 'all' as segment_name, 'all' as segment_value
    from signups
    {%- for breakdown in breakdowns %}
    union all
    select
        person_id,
        cohort_week,
        signed_up_at,
        {{ metrics_literal(breakdown) }} as segment_name,
        coalesce(breakdown_{{ loop.index }}, '(none)') as segment_value
    from signups
    {%- endfor %}

),

feature_list as (

    {{ behaviour_feature_list() }}

),

first_uses as (

    select
        events.person_id,
        events.event_name as feature,
        min(events.event_time) as first_used_at
    from events
    inner join feature_list on events.event_name = feature_list.feature
    inner join signups on events.person_id = signups.person_id
    where events.event_time >= signups.signed_up_at
    group by events.person_id, events.event_name

),

joined as (

    select
        feature_list.feature,
        segments.cohort_week,
        segments.segment_name,
        segments.segment_value,
        segments.person_id,
        first_uses.first_used_at,
        case when first_uses.first_used_at is not null then
            cast({{ dbt.datediff('segments.signed_up_at', 'first_uses.first_used_at', 'second') }}
                as {{ metrics_type_double() }}) / 86400
        end as days_to_first_use
    from segments
    cross join feature_list
    left join first_uses
        on segments.person_id = first_uses.person_id
        and feature_list.feature = first_uses.feature

),

final as (

    select
        feature,
        cohort_week,
        segment_name,
        segment_value,
        count(*) as cohort_persons,
        count(first_used_at) as adopters,
        cast(count(first_used_at) as {{ metrics_type_double() }}) / count(*) as adoption_rate,
        {{ metrics_median('days_to_first_use') }} as median_days_to_first_use
    from joined
    group by feature, cohort_week, segment_name, segment_value

)

select * from final
