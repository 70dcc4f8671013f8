-- Daily persons and events per feature event (behaviour.features.events, or every event that is no
-- funnel step), for every UTC day on which the feature was used.
{%- set cfg = behaviour_config() %}
{%- set features = cfg['features']['events'] %}
with

events as (

    select person_id, event_name, event_time
    from {{ ref('fct_events') }}
    where
    {%- if features is not none %}
        event_name in ({{ behaviour_in_list(features) if features else "''" }})
    {%- elif cfg['funnel_steps'] %}
        event_name not in ({{ behaviour_in_list(cfg['funnel_steps']) }})
    {%- else %}
        1 = 1
    {%- endif %}

),

-- Per person first, then per day and feature: the same numbers as count(distinct person_id), which
-- Postgres computes by sorting every event (118 s at 40M events on the bench's server).
per_person as (

    select
        cast(event_time as date) as usage_date,
        event_name as feature,
        person_id,
        count(*) as events
    from events
    group by cast(event_time as date), event_name, person_id

),

final as (

    select
        usage_date,
        feature,
        count(*) as persons,
        cast(sum(events) as {{ dbt.type_bigint() }}) as events
    from per_person
    group by usage_date, feature

)

select * from final
