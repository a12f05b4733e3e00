//! Subscriptions over the shared event log: `events` (JSON views) and the typed `postEvents` /
//! `userEvents`. Authorization is checked per event at delivery, resuming after `after`.

use async_graphql::{Context, ID, Json, Subscription as SubscriptionObject};
use futures::Stream;
use futures::stream::{self, StreamExt};

use super::super::error::{GqlResult, to_graphql};
use super::types::{Event, Post, PostEvent, PostFilterInput, User, UserEvent};
use super::{Caller, shared};
use crate::domain::delivery::{Delivery, Topic, deliver};
use crate::domain::error::DomainError;
use crate::domain::events::{StoredEvent, Subject};
use crate::domain::policy::Actor;
use crate::domain::post::{PostFilter, PostStatus};
use crate::domain::service::UserView;

pub struct Subscription;

fn parse_after(after: Option<ID>) -> async_graphql::Result<Option<i64>> {
    after
        .map(|a| {
            a.parse::<i64>()
                .map_err(|_| DomainError::invalid("`after` must be an event id").with_detail("after", "invalid"))
        })
        .transpose()
        .gql()
}

/// Every delivery of `topics` the caller may see (as it is at each delivery: revalidation may
/// change its role), paired with the stored event and that caller.
async fn feed(
    ctx: &Context<'_>,
    topics: Vec<Topic>,
    after: Option<i64>,
) -> async_graphql::Result<
    impl Stream<Item = async_graphql::Result<(Delivery, std::sync::Arc<StoredEvent>, Actor)>> + use<>,
> {
    let caller = ctx.data::<Caller>()?;
    let current = caller.current.clone();
    let subscription = shared(ctx).bus.subscribe(&caller.current_actor(), after).await.gql()?;
    Ok(stream::unfold(Some((subscription, current, topics)), |state| async move {
        let (mut sub, current, topics) = state?;
        loop {
            match sub.next().await {
                Ok(event) => {
                    let actor = current.read().unwrap_or_else(|e| e.into_inner()).clone();
                    if let Some(d) = deliver(&actor, &topics, &event) {
                        return Some((Ok((d, event, actor)), Some((sub, current, topics))));
                    }
                }
                Err(e) => return Some((Err(to_graphql(e)), None)),
            }
        }
    }))
}

#[SubscriptionObject]
impl Subscription {
    /// Events on `topics` (`posts`, `posts/{id}`, `users/{id}`, `users/{id}/posts`; default
    /// `posts`), replayed from the log after event `after`, then live.
    async fn events(
        &self,
        ctx: &Context<'_>,
        topics: Option<Vec<String>>,
        after: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Event>> + use<>> {
        let topics = Topic::parse_all(&topics.unwrap_or_else(|| vec!["posts".into()])).gql()?;
        let after = parse_after(after)?;
        Ok(feed(ctx, topics, after).await?.map(|r| {
            r.map(|(d, _, _)| Event {
                id: ID(d.id.to_string()),
                event_type: d.event_type.to_string(),
                topic: d.topic,
                occurred_at: d.occurred_at,
                data: Json(d.data),
            })
        }))
    }

    /// Events about one post (`id`), or about the posts matching `filter`, with the post.
    async fn post_events(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        filter: Option<PostFilterInput>,
        after: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<PostEvent>> + use<>> {
        let f = filter.unwrap_or_default();
        let filter = PostFilter::parse(
            f.author_id.map(|a| a.0),
            f.status.map(|s| PostStatus::from(s).as_str().to_string()),
            f.tag,
        )
        .gql()?;
        let topic = match (&id, &filter.author_id) {
            (Some(id), _) => format!("posts/{}", id.as_str()),
            (None, Some(author)) => format!("users/{author}/posts"),
            (None, None) => "posts".into(),
        };
        let topics = Topic::parse_all(&[topic]).gql()?;
        let after = parse_after(after)?;
        Ok(feed(ctx, topics, after).await?.filter_map(move |r| {
            let item = match r {
                Ok((d, event, _)) => match &event.subject {
                    Subject::Post(p)
                        if filter.status.is_none_or(|s| s == p.status)
                            && filter.tag.as_ref().is_none_or(|t| p.tags.contains(t)) =>
                    {
                        Some(Ok(PostEvent {
                            id: ID(d.id.to_string()),
                            event_type: d.event_type.to_string(),
                            topic: d.topic,
                            occurred_at: d.occurred_at,
                            post: Post(p.clone()),
                        }))
                    }
                    _ => None,
                },
                Err(e) => Some(Err(e)),
            };
            futures::future::ready(item)
        }))
    }

    /// Events about one user, with the user as the caller may see them.
    async fn user_events(
        &self,
        ctx: &Context<'_>,
        id: ID,
        after: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<UserEvent>> + use<>> {
        let topics = Topic::parse_all(&[format!("users/{}", id.as_str())]).gql()?;
        let after = parse_after(after)?;
        Ok(feed(ctx, topics, after).await?.filter_map(move |r| {
            let item = match r {
                Ok((d, event, actor)) => match &event.subject {
                    Subject::User(u) => Some(Ok(UserEvent {
                        id: ID(d.id.to_string()),
                        event_type: d.event_type.to_string(),
                        topic: d.topic,
                        occurred_at: d.occurred_at,
                        user: User(UserView::of(&actor, u.clone())),
                    })),
                    Subject::Post(_) => None,
                },
                Err(e) => Some(Err(e)),
            };
            futures::future::ready(item)
        }))
    }
}
