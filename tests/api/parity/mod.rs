//! The parity matrix: one table of actor x canonical operation -> expected canonical outcome,
//! run through a client of every protocol (REST, GraphQL over HTTP and over WebSocket, gRPC,
//! SOAP, `/ws` request frames) on both stores; plus one budget, one idempotency key and one
//! validation failure shared by all of them.

mod clients;
mod shared;

use polyport::domain::policy::{Actor, Credential, Principal};
use polyport::domain::service::ClientInfo;
use polyport::domain::user::{Role, UserPatch};

use crate::helpers::{PASSWORD, TestApp, TestUser};
pub use clients::{Cred, Proto};

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Anonymous,
    Owner,
    OtherMember,
    Editor,
    Admin,
    /// An admin demoted to member after signing in, still holding the admin-era token.
    DemotedAdmin,
    /// A user deleted after signing in.
    DeletedUser,
    /// A session that logged out.
    SignedOut,
    /// A session whose refresh token was presented twice (the family is revoked).
    ReusedRefresh,
    /// The owner's API key, revoked.
    RevokedKey,
    /// The owner's API key with `posts:read` only.
    ReadOnlyKey,
}

pub const EVERYONE: [Who; 11] = [
    Who::Anonymous,
    Who::Owner,
    Who::OtherMember,
    Who::Editor,
    Who::Admin,
    Who::DemotedAdmin,
    Who::DeletedUser,
    Who::SignedOut,
    Who::ReusedRefresh,
    Who::RevokedKey,
    Who::ReadOnlyKey,
];

/// The canonical operations, each on a target chosen so that authorization matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// getPost on the owner's draft.
    GetDraft,
    /// getPost on the owner's published post.
    GetPublished,
    ListPosts,
    CreatePost,
    /// updatePost on the owner's draft.
    UpdateDraft,
    PublishDraft,
    /// unpublishPost on the owner's published post.
    UnpublishPublished,
    DeleteDraft,
    Me,
    /// getUser on another member.
    GetUser,
    ListUsers,
    /// updateUser giving another member the admin role.
    PromoteUser,
    /// deleteUser on another member.
    DeleteUser,
    CreateApiKey,
    Login,
    Register,
    CreateWebhook,
    ListWebhooks,
    /// deleteWebhook on the owner's webhook.
    DeleteWebhook,
    /// listWebhookDeliveries of the owner's webhook.
    ListWebhookDeliveries,
    /// listAuditEntries (admins only).
    ListAuditEntries,
}

pub const OPERATIONS: [Op; 21] = [
    Op::GetDraft,
    Op::GetPublished,
    Op::ListPosts,
    Op::CreatePost,
    Op::UpdateDraft,
    Op::PublishDraft,
    Op::UnpublishPublished,
    Op::DeleteDraft,
    Op::Me,
    Op::GetUser,
    Op::ListUsers,
    Op::PromoteUser,
    Op::DeleteUser,
    Op::CreateApiKey,
    Op::Login,
    Op::Register,
    Op::CreateWebhook,
    Op::ListWebhooks,
    Op::DeleteWebhook,
    Op::ListWebhookDeliveries,
    Op::ListAuditEntries,
];

/// THE table: what every protocol must answer.
pub fn expected(who: Who, op: Op) -> &'static str {
    use Op::*;
    use Who::*;
    const OK: &str = "OK";
    match (who, op) {
        // Bad credentials are refused whatever the operation, never treated as anonymous.
        (DeletedUser | SignedOut | ReusedRefresh | RevokedKey, _) => "UNAUTHENTICATED",
        (Anonymous, GetDraft) => "NOT_FOUND",
        (Anonymous, GetPublished | ListPosts | GetUser | ListUsers | Login | Register) => OK,
        (Anonymous, _) => "UNAUTHENTICATED",
        // The key acts as the owner, narrowed to reading posts.
        (ReadOnlyKey, GetDraft | GetPublished | ListPosts | Login | Register) => OK,
        (ReadOnlyKey, _) => "FORBIDDEN",
        // The audit log is the admins' alone.
        (Owner | OtherMember | DemotedAdmin | Editor, ListAuditEntries) => "FORBIDDEN",
        (Owner, UnpublishPublished | PromoteUser | DeleteUser) => "FORBIDDEN",
        // A webhook is its owner's (admins may see and delete it); others are told it is not there.
        (OtherMember | DemotedAdmin | Editor, DeleteWebhook | ListWebhookDeliveries) => "NOT_FOUND",
        (Owner, _) => OK,
        // The demoted admin is a member now: the role comes from the record, not the token.
        (OtherMember | DemotedAdmin, GetDraft | UpdateDraft | PublishDraft | DeleteDraft) => "NOT_FOUND",
        (OtherMember | DemotedAdmin, UnpublishPublished | PromoteUser | DeleteUser) => "FORBIDDEN",
        (OtherMember | DemotedAdmin, _) => OK,
        (Editor, PromoteUser | DeleteUser) => "FORBIDDEN",
        (Editor, _) => OK,
        (Admin, _) => OK,
    }
}

/// The targets of one cell, fresh for it.
pub struct Fixture {
    pub draft: String,
    pub published: String,
    pub target_user: String,
    pub owner_email: String,
    /// The owner's webhook (for the webhook operations; empty otherwise).
    pub webhook: String,
}

/// The actors of one app, set up once.
pub struct Cast {
    pub owner: TestUser,
    creds: Vec<(Who, Cred)>,
}

/// What the fixtures do through the core directly: no request, no protocol.
fn internal() -> ClientInfo {
    ClientInfo::default()
}

fn session_actor(user: &TestUser, role: Role) -> Actor {
    Actor::User(Principal {
        user_id: user.id.clone(),
        role,
        credential: Credential::AccessToken { jti: "matrix".into(), session_id: "matrix".into() },
    })
}

impl Cast {
    pub async fn new(app: &TestApp) -> Cast {
        let owner = app.member("owner").await;
        let other = app.member("other").await;
        let editor = app.with_role("editor", Role::Editor).await;
        let admin = app.with_role("admin", Role::Admin).await;
        let admin_actor = session_actor(&admin, Role::Admin);

        let demoted = app.with_role("demoted", Role::Admin).await;
        let demote = UserPatch { role: Some("member".into()), ..Default::default() };
        app.core.users.update(&admin_actor, &demoted.id, demote, None, &internal()).await.expect("demoted");

        let deleted = app.member("deleted").await;
        app.core.users.delete(&admin_actor, &deleted.id, None, &internal()).await.expect("deleted");

        let signed_out = app.member("signed-out").await;
        app.core.auth.logout(&signed_out.refresh_token, &internal()).await.expect("logged out");

        let reused = app.member("reused").await;
        app.core.auth.refresh(&reused.refresh_token, &internal()).await.expect("first refresh");
        app.core.auth.refresh(&reused.refresh_token, &internal()).await.expect_err("the reuse is refused");

        let owner_actor = session_actor(&owner, Role::Member);
        let scopes = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let write = scopes(&["posts:read", "posts:write"]);
        let revoked = app.core.auth.create_api_key(&owner_actor, "revoked", &write, &internal()).await.expect("key");
        app.core.auth.revoke_api_key(&owner_actor, &revoked.key.id, &internal()).await.expect("revoked");
        let read_only =
            app.core.auth.create_api_key(&owner_actor, "read", &scopes(&["posts:read"]), &internal()).await.unwrap();

        let creds = vec![
            (Who::Anonymous, Cred::None),
            (Who::Owner, Cred::Bearer(owner.token.clone())),
            (Who::OtherMember, Cred::Bearer(other.token.clone())),
            (Who::Editor, Cred::Bearer(editor.token.clone())),
            (Who::Admin, Cred::Bearer(admin.token.clone())),
            (Who::DemotedAdmin, Cred::Bearer(demoted.token.clone())),
            (Who::DeletedUser, Cred::Bearer(deleted.token.clone())),
            (Who::SignedOut, Cred::Bearer(signed_out.token.clone())),
            (Who::ReusedRefresh, Cred::Bearer(reused.token.clone())),
            (Who::RevokedKey, Cred::Key(revoked.secret)),
            (Who::ReadOnlyKey, Cred::Key(read_only.secret)),
        ];
        Cast { owner, creds }
    }

    pub fn cred(&self, who: Who) -> &Cred {
        &self.creds.iter().find(|(w, _)| *w == who).expect("every actor has a credential").1
    }

    /// Fresh targets for one cell: the owner's draft and published post; another member
    /// only when the operation changes users (creating one hashes a password).
    pub async fn fixture(&self, app: &TestApp, op: Op) -> Fixture {
        let owner = session_actor(&self.owner, Role::Member);
        let new_post = |title: &str| polyport::domain::post::NewPost { title: title.into(), ..Default::default() };
        let draft = app.core.posts.create(&owner, new_post("draft"), &internal()).await.expect("draft").id;
        let published = app.core.posts.create(&owner, new_post("published"), &internal()).await.expect("post").id;
        app.core.posts.publish(&owner, &published, None, &internal()).await.expect("published");
        let target_user = if matches!(op, Op::PromoteUser | Op::DeleteUser) {
            let email = format!("target-{}@example.com", uuid::Uuid::now_v7().simple());
            let input =
                polyport::domain::user::RegisterUser { email, name: "Target".into(), password: PASSWORD.into() };
            app.core.users.create(input, Role::Member, &internal()).await.expect("target").id
        } else {
            self.owner.id.clone()
        };
        let webhook = if matches!(op, Op::CreateWebhook | Op::DeleteWebhook | Op::ListWebhookDeliveries) {
            self.owner_webhook(app, op != Op::CreateWebhook).await
        } else {
            String::new()
        };
        Fixture { draft, published, target_user, owner_email: self.owner.email.clone(), webhook }
    }

    /// Removes the owner's webhooks (so the per-user cap never decides a cell) and, when asked,
    /// stores a fresh one directly (its URL is never called: no event is on its topic).
    async fn owner_webhook(&self, app: &TestApp, create: bool) -> String {
        use polyport::domain::audit::{AuditRecord, action, target};
        let repo = &app.core.deps.webhooks;
        let record = |act, id: &str| {
            AuditRecord::new(&internal(), &Actor::Anonymous, act, target("webhook", id), chrono::Utc::now())
        };
        for hook in repo.list(&self.owner.id).await.unwrap() {
            repo.delete(&hook.id, &record(action::WEBHOOK_DELETED, &hook.id)).await.unwrap();
        }
        if !create {
            return String::new();
        }
        let hook = polyport::domain::webhook::Webhook {
            id: uuid::Uuid::now_v7().to_string(),
            owner_id: self.owner.id.clone(),
            url: "http://93.184.216.34/hook".into(),
            topics: vec!["posts/none".into()],
            created_at: chrono::Utc::now(),
        };
        repo.insert(&hook, "whsec_matrix", 10, &record(action::WEBHOOK_CREATED, &hook.id)).await.unwrap();
        hook.id
    }
}

/// Runs the whole table through `proto`; answers how many cells ran and those that disagree.
pub async fn run_matrix(app: &TestApp, cast: &Cast, proto: Proto) -> (usize, Vec<String>) {
    let mut wrong = Vec::new();
    let mut cells = 0;
    for op in OPERATIONS {
        if !proto.offers(op) {
            continue;
        }
        for who in EVERYONE {
            let fixture = cast.fixture(app, op).await;
            let got = clients::call(app, proto, cast.cred(who), op, &fixture).await;
            let want = expected(who, op);
            cells += 1;
            if got != want {
                wrong.push(format!("{proto:?} {who:?} {op:?}: expected {want}, got {got}"));
            }
        }
    }
    (cells, wrong)
}

async fn every_protocol_answers_the_table(app: TestApp) {
    let cast = Cast::new(&app).await;
    let mut wrong = Vec::new();
    let mut cells = 0;
    for proto in Proto::ALL {
        let (checked, disagreeing) = run_matrix(&app, &cast, proto).await;
        cells += checked;
        wrong.extend(disagreeing);
    }
    assert_eq!(cells, 6 * 21 * 11 - 2 * 11, "every offered cell ran");
    assert!(wrong.is_empty(), "{} cells disagree with the table:\n{}", wrong.len(), wrong.join("\n"));
}

crate::on_every_store!(every_protocol_answers_the_table);
