{#- Helpers for the behaviour models (models/*/behaviour). The configuration arrives as the dbt var
    `behaviour`, built from the `behaviour:` section of config/analytics.yml by
    orchestration/behaviour_config.py (docs/behaviour.md). -#}

{#- The behaviour configuration with defaults filled in (a plain `dbt build` gets the defaults). -#}
{% macro behaviour_config() -%}
  {%- set given = var('behaviour', none) or {} -%}
  {%- set features = {'events': none, 'signup_event': 'first_seen', 'breakdowns': none} -%}
  {%- do features.update(given.get('features', {})) -%}
  {%- if features['breakdowns'] is none -%}
    {%- do features.update({'breakdowns': metrics_config()['breakdowns']}) -%}
  {%- endif -%}
  {%- set lifecycle = {'event': 'any', 'granularities': ['day', 'week']} -%}
  {%- do lifecycle.update(given.get('lifecycle', {})) -%}
  {%- set impact = {'adoption_window_seconds': 604800, 'outcome_window_seconds': 2592000} -%}
  {%- do impact.update(given.get('revenue_impact', {})) -%}
  {%- set snapshots = {'recompute_days': 3} -%}
  {%- do snapshots.update(given.get('snapshots', {})) -%}
  {%- set funnel_steps = [] -%}
  {%- for funnel in metrics_config()['funnels'] -%}
    {%- for step in funnel['steps'] -%}
      {%- if step not in funnel_steps -%}{%- do funnel_steps.append(step) -%}{%- endif -%}
    {%- endfor -%}
  {%- endfor -%}
  {{ return({
      'journeys': given.get('journeys', []),
      'features': features,
      'lifecycle': lifecycle,
      'abandonment': given.get('abandonment', []),
      'revenue_property': given.get('revenue_property', 'revenue'),
      'revenue_impact': impact,
      'snapshots': snapshots,
      'funnel_steps': funnel_steps,
  }) }}
{%- endmacro %}

{#- True when the text expression matches the regular expression (a search: anchor with ^ and $). -#}
{% macro behaviour_regex_matches(expression, pattern) -%}
  {{ return(adapter.dispatch('behaviour_regex_matches', 'product_analytics')(expression, pattern)) }}
{%- endmacro %}

{% macro default__behaviour_regex_matches(expression, pattern) -%}
  ({{ expression }} ~ {{ metrics_literal(pattern) }})
{%- endmacro %}

{% macro duckdb__behaviour_regex_matches(expression, pattern) -%}
  regexp_matches({{ expression }}, {{ metrics_literal(pattern) }})
{%- endmacro %}

{#- A numeric JSON property as a double; null when absent or not a number (never an error). -#}
{% macro behaviour_json_number(column, key) -%}
  {{ return(adapter.dispatch('behaviour_json_number', 'product_analytics')(column, key)) }}
{%- endmacro %}

{% macro default__behaviour_json_number(column, key) -%}
  case
    when {{ json_text(column, key) }} ~ '^\s*-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?\s*$'
      then cast({{ json_text(column, key) }} as {{ metrics_type_double() }})
  end
{%- endmacro %}

{% macro duckdb__behaviour_json_number(column, key) -%}
  try_cast({{ json_text(column, key) }} as double)
{%- endmacro %}

{#- The hour of the day (0-23) of a timestamp. -#}
{% macro behaviour_hour(expression) -%}
  cast(extract(hour from {{ expression }}) as {{ dbt.type_int() }})
{%- endmacro %}

{#- A text list as a SQL `in (...)` list body. -#}
{% macro behaviour_in_list(values) -%}
  {%- for value in values %}{{ metrics_literal(value) }}{% if not loop.last %}, {% endif %}{% endfor -%}
{%- endmacro %}

{#- The acquisition channel from a first touch's utm_source, utm_medium and referrer (lower-cased
    text expressions). The rules, in order, are in docs/behaviour.md. -#}
{% macro behaviour_channel(source, medium, referrer) -%}
  case
    when {{ medium }} in ('cpc', 'ppc', 'paid', 'paidsearch', 'paid_search', 'paid_social', 'display', 'cpm', 'cpv')
      or {{ medium }} like 'paid%'
      then 'paid'
    when {{ medium }} in ('email', 'e-mail', 'newsletter') or {{ source }} in ('email', 'newsletter')
      then 'email'
    when {{ medium }} in ('social', 'social-network', 'social_network', 'sm')
      or {{ source }} in ('facebook', 'instagram', 'linkedin', 'twitter', 'x', 'reddit', 'tiktok', 'youtube', 'pinterest')
      or {{ referrer }} like '%facebook.%' or {{ referrer }} like '%instagram.%'
      or {{ referrer }} like '%linkedin.%' or {{ referrer }} like '%twitter.%'
      or {{ referrer }} like '%://t.co/%' or {{ referrer }} like '%://x.com/%'
      or {{ referrer }} like '%reddit.%' or {{ referrer }} like '%tiktok.%'
      or {{ referrer }} like '%youtube.%' or {{ referrer }} like '%pinterest.%'
      then 'social'
    when {{ medium }} = 'organic'
      or {{ referrer }} like '%://www.google.%' or {{ referrer }} like '%://google.%'
      or {{ referrer }} like '%bing.com%' or {{ referrer }} like '%duckduckgo.com%'
      or {{ referrer }} like '%search.yahoo.%' or {{ referrer }} like '%baidu.com%'
      or {{ referrer }} like '%yandex.%' or {{ referrer }} like '%ecosia.org%'
      then 'organic_search'
    when coalesce({{ referrer }}, '') <> '' or coalesce({{ source }}, '') <> ''
      then 'referral'
    else 'direct'
  end
{%- endmacro %}

{#- The feature events (behaviour.features.events, or else every event that is no funnel step), as
    a select of one column `feature`. Configured features are listed even if they never occur, so
    that they show with 0 adopters. `events` is a relation or CTE with an event_name column. -#}
{% macro behaviour_feature_list(events='events') -%}
    {%- set cfg = behaviour_config() %}
    {%- set features = cfg['features']['events'] %}
    {%- if features is not none %}
    {%- for feature in features %}
    select {{ metrics_literal(feature) }} as feature
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- else %}
    select cast(null as {{ dbt.type_string() }}) as feature from {{ events }} where 1 = 0
    {%- endfor %}
    {%- else %}
    select distinct event_name as feature
    from {{ events }}
    {%- if cfg['funnel_steps'] %}
    where event_name not in ({{ behaviour_in_list(cfg['funnel_steps']) }})
    {%- endif %}
    {%- endif %}
{%- endmacro %}

{#- The feature marts' signups: one row per person, their first event (by time, then event_id)
    among those that count as signing up (behaviour.features.signup_event; any event for
    first_seen), as signed_up_at, with the features breakdowns read on that event as
    breakdown_1..n. -#}
{% macro behaviour_signups(events='events') -%}
    {%- set features = behaviour_config()['features'] %}
    {%- set breakdown_columns = [] %}
    {%- for breakdown in features['breakdowns'] %}
    {%- do breakdown_columns.append('breakdown_' ~ loop.index) %}
    {%- endfor %}
    {%- set candidates -%}
    (
        select
            person_id,
            event_time,
            event_id
            {%- for breakdown in features['breakdowns'] %},
            cast({{ metrics_breakdown_expr(breakdown) }} as {{ dbt.type_string() }}) as breakdown_{{ loop.index }}
            {%- endfor %}
        from {{ events }}
        {%- if features['signup_event'] != 'first_seen' %}
        where event_name = {{ metrics_literal(features['signup_event']) }}
        {%- endif %}
    )
    {%- endset %}
    select
        person_id,
        event_time as signed_up_at
        {%- for column in breakdown_columns %},
        {{ column }}
        {%- endfor %}
    from (
        {{ adapter.dispatch('behaviour_first_signups', 'product_analytics')(candidates, ['person_id', 'event_time'] + breakdown_columns) }}
    ) as first_signups
{%- endmacro %}

{#- Each person's first candidate: ranked by a window, which reads the candidates once (with a
    signup event, a small part of the events). edge_events, which reads them three times, was
    slower here on DuckDB: 2.7 -> 3.2 s for feature_adoption at 1M persons. -#}
{% macro default__behaviour_first_signups(candidates, columns) -%}
    select {{ columns | join(', ') }}
    from (
        select
            candidates.*,
            row_number() over (partition by person_id order by event_time, event_id) as occurrence
        from {{ candidates }} as candidates
    ) as ranked
    where occurrence = 1
{%- endmacro %}

{#- Postgres estimates the window's `occurrence = 1` at a fraction of a percent of its rows (873
    rows for 180,007 signups at 250,000 persons), and planned the marts' joins on it as sorts and
    merges that spilled to disk; edge_events' `distinct on` is estimated at the persons. -#}
{% macro postgres__behaviour_first_signups(candidates, columns) -%}
    {{ edge_events(candidates, 'person_id', columns) }}
{%- endmacro %}
