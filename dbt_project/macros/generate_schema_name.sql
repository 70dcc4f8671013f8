{#- Models land in the target's schema as named, not "<target>_<custom>": one schema per environment. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
  {{ custom_schema_name if custom_schema_name else target.schema }}
{%- endmacro %}
