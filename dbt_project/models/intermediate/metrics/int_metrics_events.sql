-- fct_events narrowed to what the product metrics read, with each configured breakdown as a text
-- column `breakdown_<n>` (n = its position in the config's `breakdowns`).
--
-- A view: storing it wrote a second copy of every event (about 2 s at 1M persons x 30 days), and
-- each reader takes only some of its columns, so a reader that needs no breakdown never extracts
-- one. Its readers' times did not change (bench/README.md).
{{ config(materialized='view') }}
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
        person_id,
        loaded_at
        {%- for breakdown in cfg['breakdowns'] %},
        cast({{ metrics_breakdown_expr(breakdown) }} as {{ dbt.type_string() }}) as breakdown_{{ loop.index }}
        {%- endfor %}
    from events

)

select * from final
