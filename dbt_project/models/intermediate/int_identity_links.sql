-- Each anonymous id that was ever seen on an event together with a known user id, linked to that
-- user. An anonymous id seen with several users goes to the first by time (ties: smallest user id);
-- two known users are never merged, because only anonymous ids are ever re-pointed.
with

pairs as (

    select
        anonymous_id,
        user_id,
        min(event_time) as first_linked_at
    from {{ ref('stg_raw__events') }}
    where anonymous_id is not null and user_id is not null
    group by anonymous_id, user_id

),

ranked as (

    select
        *,
        row_number() over (
            partition by anonymous_id order by first_linked_at, user_id
        ) as link_rank,
        count(*) over (partition by anonymous_id) as users_seen_with
    from pairs

),

final as (

    select
        anonymous_id,
        user_id,
        first_linked_at,
        users_seen_with
    from ranked
    where link_rank = 1

)

select * from final
