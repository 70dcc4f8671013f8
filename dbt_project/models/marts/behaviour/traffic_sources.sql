-- Per first-touch channel and landing event (int_persons_first_touch): persons, all their sessions,
-- the bounce rate (sessions of a single event / sessions), and the peak hour (the UTC hour in which
-- most of those sessions started; ties go to the earlier hour) with its share of sessions.
with

touches as (

    select * from {{ ref('int_persons_first_touch') }}

),

sessions as (

    select
        touches.channel,
        touches.landing_event,
        fct_sessions.session_id,
        fct_sessions.event_count,
        {{ behaviour_hour('fct_sessions.started_at') }} as start_hour
    from {{ ref('fct_sessions') }} as fct_sessions
    inner join touches on fct_sessions.person_id = touches.person_id

),

persons as (

    select channel, landing_event, count(*) as persons
    from touches
    group by channel, landing_event

),

session_stats as (

    select
        channel,
        landing_event,
        count(*) as sessions,
        cast(sum(case when event_count = 1 then 1 else 0 end) as {{ dbt.type_int() }}) as bounced_sessions
    from sessions
    group by channel, landing_event

),

hours as (

    select
        channel,
        landing_event,
        start_hour,
        count(*) as hour_sessions,
        row_number() over (
            partition by channel, landing_event order by count(*) desc, start_hour
        ) as hour_rank
    from sessions
    group by channel, landing_event, start_hour

),

final as (

    select
        persons.channel,
        persons.landing_event,
        persons.persons,
        coalesce(session_stats.sessions, 0) as sessions,
        coalesce(session_stats.bounced_sessions, 0) as bounced_sessions,
        cast(session_stats.bounced_sessions as {{ metrics_type_double() }})
            / session_stats.sessions as bounce_rate,
        hours.start_hour as peak_hour,
        cast(hours.hour_sessions as {{ metrics_type_double() }}) / session_stats.sessions
            as peak_hour_share
    from persons
    left join session_stats
        on persons.channel = session_stats.channel
        and persons.landing_event = session_stats.landing_event
    left join hours
        on persons.channel = hours.channel
        and persons.landing_event = hours.landing_event
        and hours.hour_rank = 1

)

select * from final
