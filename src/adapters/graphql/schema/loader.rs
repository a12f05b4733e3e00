//! Batched lookups per request: every `author` of a page resolves with one `users.get_many`
//! call, every `posts` of a page of users with one `posts.list_for_authors` call.
//!
//! Batching needs no timer: the resolvers of one execution step all run in the same poll of
//! the request, so the first one asking for a key yields once, and by then its siblings have
//! asked for theirs; it loads them all and wakes them.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

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

/// One author's page of posts: the key `User.posts` loads by. Keys sharing everything but the
/// author are served by one query.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AuthorPosts {
    pub author: String,
    pub status: Option<PostStatus>,
    pub tag: Option<String>,
    pub page: PageRequest,
}

type Loaded<K, V> = Result<Arc<HashMap<K, V>>, async_graphql::Error>;

/// The keys asked for in one execution step, and their answer once loaded.
struct Round<K, V> {
    keys: Mutex<Vec<K>>,
    answer: OnceLock<Loaded<K, V>>,
    ready: tokio::sync::Notify,
}

/// Batches the keys of one kind within a request.
struct Batch<K, V> {
    open: Mutex<Option<Arc<Round<K, V>>>>,
}

impl<K: Clone + Eq + Hash, V: Clone> Batch<K, V> {
    fn new() -> Self {
        Self { open: Mutex::new(None) }
    }

    /// The value of `key`, loaded with every key asked for in the same step by `load`.
    async fn load_one(
        &self,
        key: K,
        load: impl AsyncFnOnce(Vec<K>) -> Result<HashMap<K, V>, async_graphql::Error>,
    ) -> async_graphql::Result<Option<V>> {
        let (round, leader) = {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            match open.as_ref() {
                Some(round) => {
                    round.keys.lock().unwrap_or_else(|e| e.into_inner()).push(key.clone());
                    (round.clone(), false)
                }
                None => {
                    let round = Arc::new(Round {
                        keys: Mutex::new(vec![key.clone()]),
                        answer: OnceLock::new(),
                        ready: Default::default(),
                    });
                    *open = Some(round.clone());
                    (round, true)
                }
            }
        };
        if leader {
            tokio::task::yield_now().await;
            self.open.lock().unwrap_or_else(|e| e.into_inner()).take();
            let keys = std::mem::take(&mut *round.keys.lock().unwrap_or_else(|e| e.into_inner()));
            let _ = round.answer.set(load(keys).await.map(Arc::new));
            round.ready.notify_waiters();
        }
        loop {
            let ready = round.ready.notified();
            if let Some(answer) = round.answer.get() {
                return answer.as_ref().map(|values| values.get(&key).cloned()).map_err(Clone::clone);
            }
            ready.await;
        }
    }
}

/// The request's batches, loading in the caller's view; one per request, so views never leak
/// across callers.
pub struct Batches {
    shared: Shared,
    actor: Actor,
    users: Batch<String, UserView>,
    posts: Batch<AuthorPosts, Page<Post>>,
}

impl Batches {
    pub fn new(shared: Shared, actor: Actor) -> Self {
        Self { shared, actor, users: Batch::new(), posts: Batch::new() }
    }

    /// A user as the caller may see them (batched with the step's other users).
    pub async fn user(&self, id: String) -> async_graphql::Result<Option<UserView>> {
        self.users
            .load_one(id, async |keys| {
                USER_BATCHES.fetch_add(1, Ordering::Relaxed);
                let users = self.shared.core.users.get_many(&self.actor, &keys).await.map_err(to_graphql)?;
                Ok(users.into_iter().map(|u| (u.id().to_string(), u)).collect())
            })
            .await
    }

    /// One author's page of posts (batched with the step's other authors).
    pub async fn author_posts(&self, key: AuthorPosts) -> async_graphql::Result<Option<Page<Post>>> {
        self.posts.load_one(key, async |keys| self.load_posts(keys).await).await
    }

    async fn load_posts(
        &self,
        keys: Vec<AuthorPosts>,
    ) -> Result<HashMap<AuthorPosts, Page<Post>>, async_graphql::Error> {
        let mut groups: HashMap<(Option<PostStatus>, Option<String>, PageRequest), Vec<String>> = HashMap::new();
        for k in &keys {
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
