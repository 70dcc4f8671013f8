-- Every distinct path of each journey (int_journey_steps), ranked: the events in time order joined
-- with ' > ' (the anchor first for `after`, last for `before`), how many paths and persons took it
-- and its share of the persons with the anchor event.
with

steps as (

    select * from {{ ref('int_journey_steps') }}

),

paths as (

    select
        journey_name,
        direction,
        anchor_event,
        person_id,
        path_id,
        {{ dbt.listagg('event_name', "' > '", 'order by step_number') }} as path,
        count(*) - 1 as path_length
    from steps
    group by journey_name, direction, anchor_event, person_id, path_id

),

totals as (

    select journey_name, count(distinct person_id) as journey_persons
    from paths
    group by journey_name

),

counted as (

    select
        journey_name,
        direction,
        anchor_event,
        path,
        path_length,
        count(distinct person_id) as persons,
        count(*) as paths
    from paths
    group by journey_name, direction, anchor_event, path, path_length

),

final as (

    select
        counted.journey_name,
        counted.direction,
        counted.anchor_event,
        row_number() over (
            partition by counted.journey_name
            order by counted.paths desc, counted.persons desc, counted.path
        ) as path_rank,
        counted.path,
        counted.path_length,
        counted.persons,
        counted.paths,
        cast(counted.persons as {{ metrics_type_double() }}) / totals.journey_persons as share
    from counted
    inner join totals on counted.journey_name = totals.journey_name

)

select * from final
