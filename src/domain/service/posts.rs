//! Post operations: create, read, list, update, publish, unpublish, delete.

use std::collections::HashMap;
use std::sync::Arc;

use super::Deps;
use super::secret::new_id;
use super::users::check_version;
use crate::domain::audit::{AuditRecord, ClientInfo, action, target};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::events::{EventType, NewEvent};
use crate::domain::page::{Page, PageRequest};
use crate::domain::policy::{self, Actor, Scope};
use crate::domain::ports::PostVisibility;
use crate::domain::post::{NewPost, Post, PostFilter, PostPatch, PostStatus};

#[derive(Clone)]
pub struct PostService {
    deps: Arc<Deps>,
}

impl PostService {
    pub(super) fn new(deps: Arc<Deps>) -> Self {
        Self { deps }
    }

    /// Any authenticated user may write posts; they start as drafts.
    #[tracing::instrument(skip_all)]
    pub async fn create(&self, actor: &Actor, input: NewPost, client: &ClientInfo) -> DomainResult<Post> {
        let me = actor.require_user()?;
        actor.require_scope(Scope::PostsWrite)?;
        let valid = input.validate()?;
        let now = self.deps.clock.now();
        let post = Post {
            id: new_id(),
            author_id: me.user_id.clone(),
            title: valid.title,
            body: valid.body,
            status: PostStatus::Draft,
            tags: valid.tags,
            published_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let event = NewEvent::post(EventType::PostCreated, &post, now).traced(client.trace_id.as_deref());
        let audit = AuditRecord::new(client, actor, action::POST_CREATED, target("post", &post.id), now);
        self.deps.posts.insert(&post, &event, &audit).await?;
        tracing::info!(post_id = %post.id, "post created");
        Ok(post)
    }

    /// A post the caller may read; others' drafts are NOT_FOUND, never FORBIDDEN.
    pub async fn get(&self, actor: &Actor, id: &str) -> DomainResult<Post> {
        actor.require_scope(Scope::PostsRead)?;
        self.load_visible(actor, id).await
    }

    pub async fn list(&self, actor: &Actor, filter: &PostFilter, page: &PageRequest) -> DomainResult<Page<Post>> {
        actor.require_scope(Scope::PostsRead)?;
        let rows = self.deps.posts.list(filter, &self.visibility(actor), page).await?;
        Ok(Page::from_overfetch(rows, page.limit, |p| p.id.clone()))
    }

    /// `list` for each of many authors with one repository call (GraphQL's `User.posts` on a
    /// page of users). Every author gets an entry, empty when nothing is visible; `filter`'s
    /// author is ignored. Unknown ids simply have no posts.
    pub async fn list_for_authors(
        &self,
        actor: &Actor,
        authors: &[String],
        filter: &PostFilter,
        page: &PageRequest,
    ) -> DomainResult<HashMap<String, Page<Post>>> {
        actor.require_scope(Scope::PostsRead)?;
        let valid: Vec<String> = authors.iter().filter(|a| crate::domain::post::is_valid_id(a)).cloned().collect();
        let rows = self.deps.posts.list_by_authors(&valid, filter, &self.visibility(actor), page).await?;
        let mut by_author: HashMap<String, Vec<Post>> = authors.iter().map(|a| (a.clone(), Vec::new())).collect();
        for post in rows {
            if let Some(list) = by_author.get_mut(&post.author_id) {
                list.push(post);
            }
        }
        Ok(by_author
            .into_iter()
            .map(|(author, rows)| (author, Page::from_overfetch(rows, page.limit, |p| p.id.clone())))
            .collect())
    }

    fn visibility(&self, actor: &Actor) -> PostVisibility {
        if policy::can_list_all_drafts(actor) {
            PostVisibility::All
        } else {
            PostVisibility::PublishedOr { author_id: actor.user_id().map(str::to_string) }
        }
    }

    /// Like `list` for one author; NOT_FOUND when the author does not exist.
    pub async fn list_by_author(
        &self,
        actor: &Actor,
        author_id: &str,
        filter: &PostFilter,
        page: &PageRequest,
    ) -> DomainResult<Page<Post>> {
        actor.require_scope(Scope::PostsRead)?;
        if !crate::domain::post::is_valid_id(author_id) || self.deps.users.get(author_id).await?.is_none() {
            return Err(DomainError::not_found("user"));
        }
        self.list(actor, filter, page).await
    }

    #[tracing::instrument(skip_all, fields(post_id = %id))]
    pub async fn update(
        &self,
        actor: &Actor,
        id: &str,
        patch: PostPatch,
        expected_version: Option<i64>,
        client: &ClientInfo,
    ) -> DomainResult<Post> {
        let mut post = self.load_writable(actor, id, policy::can_edit_post).await?;
        let patch = patch.validate()?;
        check_version(post.version, expected_version)?;
        patch.apply(&mut post);
        self.save(actor, client, post, EventType::PostUpdated, action::POST_UPDATED).await
    }

    #[tracing::instrument(skip_all, fields(post_id = %id))]
    pub async fn publish(
        &self,
        actor: &Actor,
        id: &str,
        expected_version: Option<i64>,
        client: &ClientInfo,
    ) -> DomainResult<Post> {
        let mut post = self.load_writable(actor, id, policy::can_publish_post).await?;
        check_version(post.version, expected_version)?;
        if post.status == PostStatus::Published {
            return Ok(post);
        }
        post.status = PostStatus::Published;
        post.published_at = Some(self.deps.clock.now());
        self.save(actor, client, post, EventType::PostPublished, action::POST_PUBLISHED).await
    }

    #[tracing::instrument(skip_all, fields(post_id = %id))]
    pub async fn unpublish(
        &self,
        actor: &Actor,
        id: &str,
        expected_version: Option<i64>,
        client: &ClientInfo,
    ) -> DomainResult<Post> {
        let mut post = self.load_writable(actor, id, |a, _| policy::can_unpublish_post(a)).await?;
        check_version(post.version, expected_version)?;
        if post.status == PostStatus::Draft {
            return Ok(post);
        }
        post.status = PostStatus::Draft;
        post.published_at = None;
        self.save(actor, client, post, EventType::PostUnpublished, action::POST_UNPUBLISHED).await
    }

    #[tracing::instrument(skip_all, fields(post_id = %id))]
    pub async fn delete(
        &self,
        actor: &Actor,
        id: &str,
        expected_version: Option<i64>,
        client: &ClientInfo,
    ) -> DomainResult<()> {
        let post = self.load_writable(actor, id, policy::can_edit_post).await?;
        check_version(post.version, expected_version)?;
        let now = self.deps.clock.now();
        let event = NewEvent::post(EventType::PostDeleted, &post, now).traced(client.trace_id.as_deref());
        let audit = AuditRecord::new(client, actor, action::POST_DELETED, target("post", &post.id), now);
        self.deps.posts.delete(&post, &event, &audit).await
    }

    async fn save(
        &self,
        actor: &Actor,
        client: &ClientInfo,
        mut post: Post,
        event_type: EventType,
        what: &'static str,
    ) -> DomainResult<Post> {
        let previous = post.version;
        post.version += 1;
        post.updated_at = self.deps.clock.now();
        let event = NewEvent::post(event_type, &post, post.updated_at).traced(client.trace_id.as_deref());
        let audit = AuditRecord::new(client, actor, what, target("post", &post.id), post.updated_at);
        self.deps.posts.update(&post, previous, &event, &audit).await?;
        Ok(post)
    }

    async fn load_visible(&self, actor: &Actor, id: &str) -> DomainResult<Post> {
        match self.deps.posts.get(id).await? {
            Some(post) if policy::can_read_post(actor, &post) => Ok(post),
            _ => Err(DomainError::not_found("post")),
        }
    }

    /// Loads a post for a write: unauthenticated -> 401, invisible -> 404, not allowed -> 403.
    async fn load_writable(
        &self,
        actor: &Actor,
        id: &str,
        allowed: impl Fn(&Actor, &Post) -> bool,
    ) -> DomainResult<Post> {
        actor.require_user()?;
        actor.require_scope(Scope::PostsWrite)?;
        // The stored row, not a cached copy: the version compares with the store.
        let post = match self.deps.posts.get_current(id).await? {
            Some(post) if policy::can_read_post(actor, &post) => post,
            _ => return Err(DomainError::not_found("post")),
        };
        if allowed(actor, &post) { Ok(post) } else { Err(DomainError::forbidden("you may not change this post")) }
    }
}
