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

final as (

    select
        cast(event_time as date) as usage_date,
        event_name as feature,
        count(distinct person_id) as persons,
        count(*) as events
    from events
    group by cast(event_time as date), event_name

)

select * from final
