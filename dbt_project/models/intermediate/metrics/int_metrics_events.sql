-- fct_events narrowed to what the product metrics read, with each configured breakdown as a text
-- column `breakdown_<n>` (n = its position in the config's `breakdowns`).
{%- set cfg = metrics_config() %}
with

events as (

    select * from {{ ref('fct_events') }}

),

final as (

    select
        event_id,
        event_name,
        event_time,
        cast(event_time as date) as event_date,
        person_id
        {%- for breakdown in cfg['breakdowns'] %},
        cast({{ metrics_breakdown_expr(breakdown) }} as {{ dbt.type_string() }}) as breakdown_{{ loop.index }}
        {%- endfor %}
    from events

)

select * from final
