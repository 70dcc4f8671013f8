-- One row per start event of each abandonment pair (behaviour.abandonment): its value and item
-- properties, and whether (is_completed 1/0) and how soon the person did the complete event at or
-- after it within the window.
{%- set pairs = behaviour_config()['abandonment'] %}
with

events as {{ inline_cte() }} (

    select * from {{ ref('fct_events') }}

),

{%- if pairs %}

{%- for pair in pairs %}

starts_{{ loop.index }} as (

    select
        {{ metrics_literal(pair['name']) }} as pair_name,
        {{ metrics_literal(pair['start_event']) }} as start_event,
        {{ metrics_literal(pair['complete_event']) }} as complete_event,
        event_id,
        person_id,
        event_time,
        {%- if pair['value_property'] %}
        {{ behaviour_json_number('properties', pair['value_property']) }} as start_value,
        {%- else %}
        cast(null as {{ metrics_type_double() }}) as start_value,
        {%- endif %}
        {%- if pair['item_property'] %}
        cast({{ json_text('properties', pair['item_property']) }} as {{ dbt.type_string() }}) as item
        {%- else %}
        cast(null as {{ dbt.type_string() }}) as item
        {%- endif %}
    from events
    where event_name = {{ metrics_literal(pair['start_event']) }}

),

completions_{{ loop.index }} as (

    select
        starts.event_id,
        min(completes.event_time) as completed_at
    from starts_{{ loop.index }} as starts
    inner join events as completes
        on completes.person_id = starts.person_id
        and completes.event_name = {{ metrics_literal(pair['complete_event']) }}
        and completes.event_time >= starts.event_time
        {%- if pair['window_seconds'] %}
        and completes.event_time <= {{ dbt.dateadd('second', pair['window_seconds'], 'starts.event_time') }}
        {%- endif %}
    group by starts.event_id

),

{%- endfor %}

final as (

    {%- for pair in pairs %}
    select
        starts.*,
        case when completions.completed_at is null then 0 else 1 end as is_completed,
        {{ dbt.datediff('starts.event_time', 'completions.completed_at', 'second') }} as seconds_to_complete
    from starts_{{ loop.index }} as starts
    left join completions_{{ loop.index }} as completions on starts.event_id = completions.event_id
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

)

{%- else %}

final as (

    select
        cast(null as {{ dbt.type_string() }}) as pair_name,
        cast(null as {{ dbt.type_string() }}) as start_event,
        cast(null as {{ dbt.type_string() }}) as complete_event,
        cast(null as {{ dbt.type_string() }}) as event_id,
        cast(null as {{ dbt.type_string() }}) as person_id,
        cast(null as {{ dbt.type_timestamp() }}) as event_time,
        cast(null as {{ metrics_type_double() }}) as start_value,
        cast(null as {{ dbt.type_string() }}) as item,
        0 as is_completed,
        cast(null as {{ dbt.type_int() }}) as seconds_to_complete
    from events
    where 1 = 0

)

{%- endif %}

select * from final
