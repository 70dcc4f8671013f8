-- Each journey's step-to-step moves: from the event at step_number to the next event of the same
-- path, with how many persons and paths made the move. In `after` journeys a path that ends before
-- its N steps (the person did nothing more) moves to '(end)'. Steps are relative to the anchor (0);
-- negative before it.
with

steps as (

    select * from {{ ref('int_journey_steps') }}

),

with_next as (

    select
        *,
        lead(event_name) over (partition by journey_name, path_id order by step_number) as next_event,
        max(step_number) over (partition by journey_name, path_id) as last_step
    from steps

),

final as (

    select
        journey_name,
        direction,
        anchor_event,
        step_number,
        event_name,
        coalesce(next_event, '(end)') as next_event,
        count(distinct person_id) as persons,
        count(*) as paths
    from with_next
    where next_event is not null
        or (direction = 'after' and last_step < steps)
    group by journey_name, direction, anchor_event, step_number, event_name, coalesce(next_event, '(end)')

)

select * from final
