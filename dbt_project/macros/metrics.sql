{#- Helpers for the product-metrics models (models/marts/metrics). The configuration arrives as the
    dbt var `metrics`, built from config/analytics.yml by orchestration/metrics_config.py. -#}

{#- The metrics configuration with defaults filled in. Without the var (a plain `dbt build`), there
    are no funnels and retention uses first_seen / any, and a warning says how to pass the config. -#}
{% macro metrics_config() -%}
  {%- set given = var('metrics', none) -%}
  {%- if given is none -%}
    {%- if execute and model is defined and model.resource_type == 'model' -%}
      {{ log("metrics: no `metrics` var given, so no funnels are built; pass --vars \"$(python -m orchestration.metrics_config)\"", info=True) }}
    {%- endif -%}
    {%- set given = {} -%}
  {%- endif -%}
  {%- set retention = {
      'cohort_event': 'first_seen', 'return_event': 'any', 'cohort_type': 'first_time',
      'granularities': ['day', 'week', 'month'], 'max_periods': {'day': 30, 'week': 12, 'month': 12}
  } -%}
  {%- do retention.update(given.get('retention', {})) -%}
  {{ return({
      'funnels': given.get('funnels', []),
      'breakdowns': given.get('breakdowns', []),
      'retention': retention,
  }) }}
{%- endmacro %}

{#- A text value as a quoted SQL literal. -#}
{% macro metrics_literal(text) -%}
  '{{ dbt.escape_single_quotes(text | string) }}'
{%- endmacro %}

{#- The most steps of any configured funnel (the width of int_funnel_chains). -#}
{% macro metrics_max_steps() -%}
  {%- set ns = namespace(n=1) -%}
  {%- for funnel in metrics_config()['funnels'] -%}
    {%- if funnel['steps'] | length > ns.n -%}{%- set ns.n = funnel['steps'] | length -%}{%- endif -%}
  {%- endfor -%}
  {{ return(ns.n) }}
{%- endmacro %}

{#- SQL for a breakdown: a contract column, or `properties.<key>` read from the JSON properties. -#}
{% macro metrics_breakdown_expr(breakdown) -%}
  {%- if breakdown.startswith('properties.') -%}
    {{ json_text('properties', breakdown[11:]) }}
  {%- elif breakdown in ('platform', 'country', 'source') -%}
    {{ breakdown }}
  {%- else -%}
    {{ exceptions.raise_compiler_error("unknown breakdown " ~ breakdown) }}
  {%- endif -%}
{%- endmacro %}

{#- The median of a numeric expression (an aggregate). -#}
{% macro metrics_median(expression) -%}
  {{ return(adapter.dispatch('metrics_median', 'product_analytics')(expression)) }}
{%- endmacro %}

{% macro default__metrics_median(expression) -%}
  percentile_cont(0.5) within group (order by {{ expression }})
{%- endmacro %}

{% macro duckdb__metrics_median(expression) -%}
  median({{ expression }})
{%- endmacro %}

{#- The date on which the period (day, ISO week from Monday, month) holding `expression` starts. -#}
{% macro metrics_period_start(granularity, expression) -%}
  cast({{ dbt.date_trunc(granularity, expression) }} as date)
{%- endmacro %}

{#- Whole periods from one period start to another (both already truncated). -#}
{% macro metrics_periods_between(granularity, start_date, end_date) -%}
  {%- if granularity == 'week' -%}
    cast({{ dbt.datediff(start_date, end_date, 'day') }} / 7 as {{ dbt.type_int() }})
  {%- else -%}
    {{ dbt.datediff(start_date, end_date, granularity) }}
  {%- endif -%}
{%- endmacro %}

{#- A double-precision float on every adapter (dbt.type_float() is 4-byte REAL on DuckDB). -#}
{% macro metrics_type_double() -%}
  double precision
{%- endmacro %}


{#- Grouping sets for counting per segment: `keys`, and `keys` plus each breakdown's column
    `segment_<n>` (never null in the input, '(none)' standing for a missing value), so that one scan
    counts everyone and every breakdown value. -#}
{% macro metrics_segment_sets(keys) -%}
grouping sets (
        ({{ keys }})
        {%- for breakdown in metrics_config()['breakdowns'] %},
        ({{ keys }}, segment_{{ loop.index }})
        {%- endfor %}
    )
{%- endmacro %}

{#- `segment_name` and `segment_value` of a row grouped by metrics_segment_sets: the breakdown
    whose column is set and its value, or 'all'. -#}
{% macro metrics_segment_columns() -%}
{%- set breakdowns = metrics_config()['breakdowns'] -%}
{%- if breakdowns -%}
case
            {%- for breakdown in breakdowns %}
            when segment_{{ loop.index }} is not null then {{ metrics_literal(breakdown) }}
            {%- endfor %}
            else {{ metrics_literal('all') }}
        end as segment_name,
        coalesce(
            {%- for breakdown in breakdowns %}segment_{{ loop.index }}, {% endfor -%}
            {{ metrics_literal('all') }}
        ) as segment_value
{%- else -%}
{{ metrics_literal('all') }} as segment_name,
        {{ metrics_literal('all') }} as segment_value
{%- endif -%}
{%- endmacro %}


{#- What int_retention_members is built from: a change rebuilds it whole. -#}
{% macro retention_members_settings() -%}
{%- set cfg = metrics_config() -%}
{{ return({'retention': cfg['retention'], 'breakdowns': cfg['breakdowns']}) }}
{%- endmacro %}
