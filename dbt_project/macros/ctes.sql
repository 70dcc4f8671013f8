{#
  CTE materialization. DuckDB (like Postgres before 12) computes a CTE that the query references
  more than once into a temporary result, and then reads that. For a CTE that only scans a table
  (`events as (select ... from fct_events)`), that copies every row it selects before the query
  proper starts: at 40M events this copy was most of dim_users', fct_sessions' and several marts'
  build time (bench/README.md). Such CTEs are written `events as {{ inline_cte() }} (...)`, which
  makes each reference scan the table itself.

  Only for CTEs that are cheap to compute again (a scan, a filter, a projection): a CTE with a
  window function or a join that several parts of the query read is better computed once.
#}

{% macro inline_cte(enabled=true) -%}
{%- if enabled -%}
{{ return(adapter.dispatch('inline_cte', 'product_analytics')()) }}
{%- endif -%}
{%- endmacro %}

{#- Where the adapter has no way to say so, the database decides, as it did before. -#}
{% macro default__inline_cte() -%}
{%- endmacro %}

{% macro duckdb__inline_cte() -%}
not materialized
{%- endmacro %}

{#- Postgres 12 and later. -#}
{% macro postgres__inline_cte() -%}
not materialized
{%- endmacro %}
