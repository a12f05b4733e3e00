//! The storage contract: the same port-level guarantees on SQLite and PostgreSQL.

use chrono::{Duration, Utc};
use polyport::domain::ErrorCode;
use polyport::domain::audit::AuditRecord;
use polyport::domain::credentials::RefreshToken;
use polyport::domain::events::{EventType, NewEvent};
use polyport::domain::page::PageRequest;
use polyport::domain::policy::Actor;
use polyport::domain::ports::PostVisibility;
use polyport::domain::ports::{IdempotencyClaim, SavedOutcome};
use polyport::domain::post::{PostFilter, PostStatus};

use crate::helpers::TestApp;
use crate::on_every_store;

on_every_store!(
    a_stale_version_is_a_mismatch_and_a_missing_row_is_not_found,
    a_refresh_token_rotates_exactly_once,
    event_ids_increase_and_read_after_resumes_exactly,
    idempotency_claims_replay_mismatch_and_take_over_dead_claims,
    listing_many_authors_gives_each_author_the_page_a_single_author_list_gives,
    a_write_that_fails_half_way_leaves_nothing_and_the_writes_beside_it_commit
);

async fn a_stale_version_is_a_mismatch_and_a_missing_row_is_not_found(app: TestApp) {
    let ada = app.member("ada").await;
    let repo = &app.core.deps.users;
    let mut user = repo.get(&ada.id).await.unwrap().unwrap();
    user.name = "changed".into();
    user.version = 3;
    let event = NewEvent::user(EventType::UserUpdated, &user, Utc::now());
    let audit = AuditRecord::new(&Default::default(), &Actor::Anonymous, "user.updated", None, Utc::now());
    let stale = repo.update(&user, 2, &event, &audit).await.unwrap_err();
    assert_eq!(stale.code, ErrorCode::Conflict);
    assert!(stale.version_mismatch);
    user.id = "missing".into();
    assert_eq!(repo.update(&user, 1, &event, &audit).await.unwrap_err().code, ErrorCode::NotFound);
}

async fn a_refresh_token_rotates_exactly_once(app: TestApp) {
    let ada = app.member("ada").await;
    let creds = &app.core.deps.credentials;
    let now = Utc::now();
    let token = |id: &str| RefreshToken {
        id: id.into(),
        family_id: "fam".into(),
        user_id: ada.id.clone(),
        token_hash: format!("hash-{id}"),
        created_at: now,
        expires_at: now + Duration::days(1),
        used_at: None,
        revoked_at: None,
    };
    creds.insert_refresh_token(&token("a")).await.unwrap();
    assert!(creds.rotate_refresh_token("a", &token("b"), now).await.unwrap());
    assert!(!creds.rotate_refresh_token("a", &token("c"), now).await.unwrap());
    assert!(creds.find_refresh_token("hash-c").await.unwrap().is_none(), "a refused rotation inserts nothing");
    assert!(!creds.is_family_revoked("fam").await.unwrap());
    creds.revoke_family("fam", now).await.unwrap();
    assert!(creds.is_family_revoked("fam").await.unwrap());
    assert!(!creds.rotate_refresh_token("b", &token("d"), now).await.unwrap());
}

async fn event_ids_increase_and_read_after_resumes_exactly(app: TestApp) {
    let ada = app.member("ada").await;
    for i in 0..5 {
        app.create_post(&ada, &format!("p{i}"), &[]).await;
    }
    let log = &app.core.deps.events;
    let all = log.read_after(0, 100).await.unwrap();
    assert_eq!(all.len(), 6);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(log.last_id().await.unwrap(), all[5].id);
    let tail = log.read_after(all[2].id, 2).await.unwrap();
    assert_eq!(tail.iter().map(|e| e.id).collect::<Vec<_>>(), [all[3].id, all[4].id]);
    assert_eq!(tail[0].subject, all[3].subject, "events come back exactly as stored");
    assert_eq!(log.purge_before(Utc::now() + Duration::seconds(1)).await.unwrap(), 6);
}

async fn idempotency_claims_replay_mismatch_and_take_over_dead_claims(app: TestApp) {
    let store = &app.core.deps.idempotency;
    let now = Utc::now();
    let long_ago = now - Duration::hours(1);
    assert_eq!(store.claim("s", "k", "f1", now, long_ago).await.unwrap(), IdempotencyClaim::Claimed);
    assert_eq!(store.claim("s", "k", "f1", now, long_ago).await.unwrap(), IdempotencyClaim::InProgress);
    assert_eq!(store.claim("s", "k", "f2", now, long_ago).await.unwrap(), IdempotencyClaim::Mismatch);
    let later = now + Duration::minutes(5);
    assert_eq!(
        store.claim("s", "k", "f1", later, now + Duration::seconds(1)).await.unwrap(),
        IdempotencyClaim::Claimed,
        "a dead claim is taken over"
    );
    let saved = SavedOutcome { body: br#"{"ok":"Done"}"#.to_vec() };
    store.complete("s", "k", &saved, later).await.unwrap();
    assert_eq!(store.claim("s", "k", "f1", later, long_ago).await.unwrap(), IdempotencyClaim::Replay(saved));
    assert_eq!(
        store.claim("other", "k", "f1", later, long_ago).await.unwrap(),
        IdempotencyClaim::Claimed,
        "scopes are separate"
    );
    store.release("other", "k").await.unwrap();
    assert_eq!(store.claim("other", "k", "f9", later, long_ago).await.unwrap(), IdempotencyClaim::Claimed);
    assert_eq!(store.purge_before(later + Duration::seconds(1)).await.unwrap(), 2);
}

/// On SQLite concurrent writes share one transaction and run without savepoints; a post whose
/// second tag repeats the first fails after its row and first tag were written, so the batch
/// runs again with one savepoint per write. Either way: the failed write leaves no row, tag,
/// event or audit entry, and every write beside it commits whole.
async fn a_write_that_fails_half_way_leaves_nothing_and_the_writes_beside_it_commit(app: TestApp) {
    let ada = app.member("ada").await;
    let (repo, now) = (&app.core.deps.posts, Utc::now());
    let post = |n: usize, tags: &[&str]| polyport::domain::post::Post {
        id: format!("0190a000-0000-7000-8000-{n:012}"),
        author_id: ada.id.clone(),
        title: format!("post {n}"),
        body: "body".into(),
        status: PostStatus::Published,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        published_at: Some(now),
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let posts: Vec<_> =
        (0..9).map(|n| if n == 4 { post(n, &["dup", "dup"]) } else { post(n, &["ok", &format!("t{n}")]) }).collect();
    let written = futures::future::join_all(posts.iter().map(|p| {
        let event = NewEvent::post(EventType::PostCreated, p, now);
        let audit = AuditRecord::new(&Default::default(), &Actor::Anonymous, "post.created", Some(p.id.clone()), now);
        async move { repo.insert(p, &event, &audit).await }
    }))
    .await;
    for (n, result) in written.iter().enumerate() {
        assert_eq!(result.is_err(), n == 4, "post {n}: {result:?}");
        let stored = repo.get_current(&posts[n].id).await.unwrap();
        assert_eq!(stored.as_ref().map(|p| p.tags.clone()), (n != 4).then(|| posts[n].tags.clone()), "post {n}");
    }
    let everyone = PostVisibility::All;
    let tagged = |tag: &str| PostFilter { tag: Some(tag.into()), ..PostFilter::default() };
    let page = PageRequest::new(Some(50), None);
    assert_eq!(repo.list(&tagged("ok"), &everyone, &page).await.unwrap().len(), 8);
    assert!(repo.list(&tagged("dup"), &everyone, &page).await.unwrap().is_empty(), "no tag row of the failed post");
    let events = app.core.deps.events.read_after(0, 100).await.unwrap();
    let created: Vec<_> = events.iter().filter(|e| e.subject.id().starts_with("0190a000")).collect();
    assert_eq!(created.len(), 8, "one event per committed post");
    assert!(created.iter().all(|e| e.subject.id() != posts[4].id));
    let filter = polyport::domain::audit::AuditFilter { target: Some(posts[4].id.clone()), ..Default::default() };
    assert!(app.core.deps.audit.list(&filter, &page).await.unwrap().is_empty(), "no audit entry of the failed post");
}

async fn listing_many_authors_gives_each_author_the_page_a_single_author_list_gives(app: TestApp) {
    let (ada, bob, cyd) = (app.member("ada").await, app.member("bob").await, app.member("cyd").await);
    for i in 0..4 {
        app.published_post(&ada, &format!("ada {i}")).await;
    }
    app.create_post(&ada, "ada draft", &["rust"]).await;
    app.published_post(&bob, "bob 0").await;
    let tagged = app.create_post(&bob, "bob tagged", &["rust"]).await;
    app.post(&format!("/posts/{}/publish", tagged["id"].as_str().unwrap()), Some(&bob.token), serde_json::json!({}))
        .await;
    let repo = &app.core.deps.posts;
    let authors = vec![ada.id.clone(), bob.id.clone(), cyd.id.clone(), "0".repeat(26)];
    let cases = [
        (PostFilter::default(), PostVisibility::PublishedOr { author_id: None }, PageRequest::new(Some(2), None)),
        (
            PostFilter::default(),
            PostVisibility::PublishedOr { author_id: Some(ada.id.clone()) },
            PageRequest::new(Some(3), None),
        ),
        (
            PostFilter { tag: Some("rust".into()), ..PostFilter::default() },
            PostVisibility::All,
            PageRequest::new(None, None),
        ),
        (
            PostFilter { status: Some(PostStatus::Draft), ..PostFilter::default() },
            PostVisibility::All,
            PageRequest::new(None, None),
        ),
    ];
    for (filter, visibility, page) in cases {
        let all = repo.list_by_authors(&authors, &filter, &visibility, &page).await.unwrap();
        for author in &authors {
            let one = PostFilter { author_id: Some(author.clone()), ..filter.clone() };
            let expected: Vec<String> =
                repo.list(&one, &visibility, &page).await.unwrap().into_iter().map(|p| p.id).collect();
            let got: Vec<String> = all.iter().filter(|p| &p.author_id == author).map(|p| p.id.clone()).collect();
            assert_eq!(got, expected, "{filter:?} {visibility:?} {page:?} for {author}");
        }
        assert!(all.iter().all(|p| authors.contains(&p.author_id)));
    }
    let newest = repo
        .list_by_authors(&authors, &PostFilter::default(), &PostVisibility::All, &PageRequest::new(Some(2), None))
        .await
        .unwrap();
    assert_eq!(newest.iter().filter(|p| p.author_id == ada.id).count(), 3, "limit + 1 rows prove there is more");
    let after = newest.iter().find(|p| p.author_id == ada.id).unwrap().id.clone();
    let older = repo
        .list_by_authors(
            std::slice::from_ref(&ada.id),
            &PostFilter::default(),
            &PostVisibility::All,
            &PageRequest::new(Some(2), Some(after.clone())),
        )
        .await
        .unwrap();
    assert!(older.iter().all(|p| p.id < after) && older.len() == 3);
    assert!(
        repo.list_by_authors(&[], &PostFilter::default(), &PostVisibility::All, &PageRequest::default())
            .await
            .unwrap()
            .is_empty()
    );
}

/// Sustained writes (posts of 24 KB) with reads in between: the checkpointer alone never
/// catches up while every batch appends, so without the writer's own checkpoint the WAL grew
/// without bound (34 MiB in these 8 s in a debug build, 171 MiB in 12 s of the release
/// benchmark). It must stay near its 16 MiB limit however long writes go on.
#[tokio::test]
async fn the_sqlite_wal_stays_bounded_under_sustained_writes() {
    let app = crate::helpers::spawn_app().await;
    let Some(path) = app.database_url.strip_prefix("sqlite://") else { return };
    let wal = std::path::PathBuf::from(format!("{path}-wal"));
    let ada = app.member("ada").await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let created = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..32)
        .map(|w| {
            let (client, base, token) = (app.client.clone(), app.api(""), ada.token.clone());
            let (stop, created) = (stop.clone(), created.clone());
            tokio::spawn(async move {
                let body = "words ".repeat(4000);
                for i in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let post = serde_json::json!({"title": format!("w{w} p{i}"), "body": body, "tags": ["a", "b"]});
                    let r = client.post(format!("{base}/posts")).bearer_auth(&token).json(&post).send().await.unwrap();
                    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
                    let id = r.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string();
                    let r = client.get(format!("{base}/posts/{id}")).bearer_auth(&token).send().await.unwrap();
                    assert_eq!(r.status(), reqwest::StatusCode::OK);
                    created.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        })
        .collect();
    let mut largest = 0;
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(8) {
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let created = created.load(std::sync::atomic::Ordering::Relaxed);
    assert!(created > 300, "writes kept coming: {created}");
    assert!(largest < 24 << 20, "the WAL reached {} MiB after {created} creates", largest >> 20);
}

/// SQLite's group commit tells a write that failed half-way by `total_changes`, which counts the
/// rows of the statements themselves and not what triggers do: so every trigger of the schema
/// may only refuse (`RAISE`), never write.
#[test]
fn sqlite_triggers_only_refuse_and_never_write() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/sqlite");
    let mut triggers = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let sql = std::fs::read_to_string(&path).unwrap().to_uppercase();
        for trigger in sql.split("CREATE TRIGGER").skip(1) {
            triggers += 1;
            let (begin, end) = (trigger.find("BEGIN").unwrap(), trigger.find("END;").unwrap());
            let statements = trigger[begin + "BEGIN".len()..end].split(';').map(str::trim).filter(|s| !s.is_empty());
            for statement in statements {
                assert!(statement.starts_with("SELECT RAISE("), "{}: a trigger writes: {statement}", path.display());
            }
        }
    }
    assert!(triggers >= 2, "the audit log's triggers were found");
}
