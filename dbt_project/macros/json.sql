{#- The text value of a top-level key of a JSON object stored as text (null when absent). -#}
{% macro json_text(column, key) -%}
  {{ return(adapter.dispatch('json_text', 'product_analytics')(column, key)) }}
{%- endmacro %}

{% macro default__json_text(column, key) -%}
  (cast({{ column }} as json) ->> '{{ key }}')
{%- endmacro %}

{% macro duckdb__json_text(column, key) -%}
  json_extract_string({{ column }}, '$.{{ key }}')
{%- endmacro %}
