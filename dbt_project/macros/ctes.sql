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

{#
  Planner help for Postgres. A table dbt has just created has no statistics until autovacuum gets
  to it, so the next model that reads it is planned blind: on the demo, int_feature_revenue_persons
  recomputed the max over fct_events once per signup (104 s; 0.2 s after `analyze`). So every
  table a model builds is analyzed as its last step (dbt_project.yml's post-hook); DuckDB keeps
  its statistics as it writes and needs nothing.
#}
{% macro analyze_built_table() -%}
{%- if config.get('materialized') in ('table', 'incremental') -%}
{{ return(analyze_table(this)) }}
{%- endif -%}
{%- endmacro %}

{#- `analyze` of `relation` where the adapter needs it (Postgres), else nothing. Also used for the
    work tables of the incremental models' pre-hooks (macros/landings.sql), which the model's own
    query joins in the same transaction. -#}
{% macro analyze_table(relation) -%}
{{ return(adapter.dispatch('analyze_table', 'product_analytics')(relation)) }}
{%- endmacro %}

{% macro default__analyze_table(relation) -%}
{%- endmacro %}

{% macro postgres__analyze_table(relation) -%}
analyze {{ relation }}
{%- endmacro %}

{#
  A CTE has no statistics in Postgres, and a filter on one is estimated at a few rows, so joins
  between CTEs are planned as nested loops that compare every pair: on the demo,
  int_funnel_chains' step CTEs joined on person_id took 15.7 s (0.09 s as hash joins), and with
  statistics on fct_events int_journey_steps took 151 s. The models' tables have no indexes (but
  fct_events' and stg_raw__events', below), so a nested loop is almost never the better plan
  here; every model's pre-hook (dbt_project.yml) makes them a last resort (`enable_nestloop = off`
  adds a large cost, it does not forbid: a join with no equality, such as a cross join with a
  one-row CTE, still loops), for its own transaction only (`set local`: dbt runs a model's
  pre-hooks in its transaction).

  The exception is fct_events, which is indexed on Postgres (postgres_indexes): the incremental
  runs' deletes, which join a few changed persons to it, run with nested loops allowed
  (with_index_joins; macros/landings.sql, macros/events.sql). Only those statements: the models'
  own queries with nested loops allowed ran for minutes instead of seconds.
#}
{% macro prefer_hash_joins() -%}
{{ return(nested_loops(allowed=false)) }}
{%- endmacro %}

{#- The setting that allows nested loops or makes them a last resort, where the adapter has one. -#}
{% macro nested_loops(allowed) -%}
{{ return(adapter.dispatch('nested_loops', 'product_analytics')(allowed)) }}
{%- endmacro %}

{% macro default__nested_loops(allowed) -%}
{%- endmacro %}

{% macro postgres__nested_loops(allowed) -%}
set local enable_nestloop = {{ 'on' if allowed else 'off' }}
{%- endmacro %}

{#
  No JIT compilation on Postgres, for the model's own transaction (`set local`). Postgres compiles
  a query's expressions with LLVM when its estimated cost passes `jit_above_cost`, and inlines and
  optimizes them past `jit_optimize_above_cost`. A plan that keeps a nested loop under
  `enable_nestloop = off` (above) carries its large added cost, so most models' queries got the
  full compilation: 0.5 to 2.4 s a query in the plans logged at 250,000 persons (9.9M events),
  more than it saved on queries that read each row a few times. Thirteen models, one dbt thread,
  there: 100.6 s with JIT, 91.2 s without (bench/README.md, thirteenth session).
#}
{% macro without_jit() -%}
{{ return(adapter.dispatch('without_jit', 'product_analytics')()) }}
{%- endmacro %}

{% macro default__without_jit() -%}
{%- endmacro %}

{% macro postgres__without_jit() -%}
set local jit = off
{%- endmacro %}


{#- `statements` (SQL separated by `;`) run with nested loops allowed, then hash joins preferred
    again, where the adapter has such settings; the statements alone elsewhere. -#}
{% macro with_index_joins(statements) -%}
{{ return(sql_statements([nested_loops(allowed=true), statements, prefer_hash_joins()])) }}
{%- endmacro %}


{#- One hook's SQL from `statements`, some of which an adapter may render empty (the planner
    settings and `analyze` above, on DuckDB): the non-empty ones, separated by `;`. -#}
{% macro sql_statements(statements) -%}
{{ return(statements | map('trim') | select | join(';\n')) }}
{%- endmacro %}


{#
  Indexes, on Postgres only (a model's `indexes` config; dbt-postgres creates them when it creates
  the table, and Postgres keeps them through the incremental runs). DuckDB's own indexes (ART)
  would slow every load and do not serve its scans, so there the list is empty.
#}
{% macro postgres_indexes(indexes) -%}
{{ return(adapter.dispatch('postgres_indexes', 'product_analytics')(indexes)) }}
{%- endmacro %}

{% macro default__postgres_indexes(indexes) -%}
{{ return([]) }}
{%- endmacro %}

{% macro postgres__postgres_indexes(indexes) -%}
{{ return(indexes) }}
{%- endmacro %}
