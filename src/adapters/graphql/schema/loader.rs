//! Batched lookups per request: every `author` of a page resolves with one `users.get_many`
//! call, every `posts` of a page of users with one `posts.list_for_authors` call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use async_graphql::dataloader::Loader;

use super::super::error::to_graphql;
use crate::adapters::Shared;
use crate::domain::page::{Page, PageRequest};
use crate::domain::policy::Actor;
use crate::domain::post::{Post, PostFilter, PostStatus};
use crate::domain::service::UserView;

static USER_BATCHES: AtomicU64 = AtomicU64::new(0);
static POST_BATCHES: AtomicU64 = AtomicU64::new(0);

/// How many batched user lookups this process has made (observability and the N+1 tests).
pub fn user_batches() -> u64 {
    USER_BATCHES.load(Ordering::Relaxed)
}

/// How many batched post-list lookups (one repository query each) this process has made.
pub fn post_batches() -> u64 {
    POST_BATCHES.load(Ordering::Relaxed)
}

/// Loads in the caller's view; one loader per request, so views never leak across callers.
pub struct BatchLoader {
    pub shared: Shared,
    pub actor: Actor,
}

impl Loader<String> for BatchLoader {
    type Value = UserView;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, UserView>, Self::Error> {
        USER_BATCHES.fetch_add(1, Ordering::Relaxed);
        let users = self.shared.core.users.get_many(&self.actor, keys).await.map_err(to_graphql)?;
        Ok(users.into_iter().map(|u| (u.id().to_string(), u)).collect())
    }
}

/// One author's page of posts: the key `User.posts` loads by. Keys sharing everything but the
/// author are served by one query.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AuthorPosts {
    pub author: String,
    pub status: Option<PostStatus>,
    pub tag: Option<String>,
    pub page: PageRequest,
}

impl Loader<AuthorPosts> for BatchLoader {
    type Value = Page<Post>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[AuthorPosts]) -> Result<HashMap<AuthorPosts, Page<Post>>, Self::Error> {
        let mut groups: HashMap<(Option<PostStatus>, Option<String>, PageRequest), Vec<String>> = HashMap::new();
        for k in keys {
            groups.entry((k.status, k.tag.clone(), k.page.clone())).or_default().push(k.author.clone());
        }
        let mut out = HashMap::with_capacity(keys.len());
        for ((status, tag, page), authors) in groups {
            POST_BATCHES.fetch_add(1, Ordering::Relaxed);
            let filter = PostFilter { author_id: None, status, tag: tag.clone() };
            let pages = self.shared.core.posts.list_for_authors(&self.actor, &authors, &filter, &page).await;
            for (author, p) in pages.map_err(to_graphql)? {
                let key = AuthorPosts { author, status, tag: tag.clone(), page: page.clone() };
                out.insert(key, p);
            }
        }
        Ok(out)
    }
}
