{#- Helpers for the experiment models (models/intermediate/experiments). The experiments arrive in
    the dbt var `metrics` (key `experiments`), built from config/analytics.yml by
    orchestration/metrics_config.py, which has already validated them. -#}

{#- The configured experiments (an empty list without the var). -#}
{% macro experiments_config() -%}
  {{ return(var('metrics', {}).get('experiments', [])) }}
{%- endmacro %}

{#- A text value as a double, null when it is not a number (a malformed property must not fail the
    build: it simply contributes nothing). -#}
{% macro experiments_to_number(expression) -%}
  {{ return(adapter.dispatch('experiments_to_number', 'product_analytics')(expression)) }}
{%- endmacro %}

{% macro default__experiments_to_number(expression) -%}
  case
    when {{ expression }} ~ '^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$'
      then cast({{ expression }} as double precision)
  end
{%- endmacro %}

{% macro duckdb__experiments_to_number(expression) -%}
  try_cast({{ expression }} as double)
{%- endmacro %}

{#- `expression` (a timestamp) plus a number of seconds. -#}
{% macro experiments_add_seconds(expression, seconds) -%}
  {{ dbt.dateadd('second', seconds | int, expression) }}
{%- endmacro %}
