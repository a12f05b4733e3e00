//! User operations: register, read (full or public view), list, update, delete.

use std::sync::Arc;

use super::Deps;
use super::secret::new_id;
use crate::domain::audit::{AuditRecord, ClientInfo, action, target};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::events::{EventType, NewEvent};
use crate::domain::page::{Page, PageRequest};
use crate::domain::policy::{self, Actor, Scope};
use crate::domain::user::{RegisterUser, Role, User, UserPatch};

/// The direction of an operator's role change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChange {
    Promote,
    Demote,
}

/// What a caller may see of a user: everything, or the public profile (`id`, `name`).
#[derive(Debug, Clone, PartialEq)]
pub enum UserView {
    Full(User),
    Public { id: String, name: String, version: i64 },
}

impl UserView {
    pub fn of(actor: &Actor, user: User) -> Self {
        if policy::can_read_private_user(actor, &user) {
            UserView::Full(user)
        } else {
            UserView::Public { id: user.id, name: user.name, version: user.version }
        }
    }

    pub fn version(&self) -> i64 {
        match self {
            UserView::Full(u) => u.version,
            UserView::Public { version, .. } => *version,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            UserView::Full(u) => &u.id,
            UserView::Public { id, .. } => id,
        }
    }
}

#[derive(Clone)]
pub struct UserService {
    deps: Arc<Deps>,
}

impl UserService {
    pub(super) fn new(deps: Arc<Deps>) -> Self {
        Self { deps }
    }

    /// Anyone may register; new users are members.
    #[tracing::instrument(skip_all)]
    pub async fn register(&self, input: RegisterUser, client: &ClientInfo) -> DomainResult<User> {
        self.insert(input, Role::Member, client, action::USER_REGISTERED).await
    }

    /// Creates a user with any role (bootstrap of the first admin, operator tooling).
    pub async fn create(&self, input: RegisterUser, role: Role, client: &ClientInfo) -> DomainResult<User> {
        self.insert(input, role, client, action::USER_CREATED).await
    }

    async fn insert(
        &self,
        input: RegisterUser,
        role: Role,
        client: &ClientInfo,
        what: &'static str,
    ) -> DomainResult<User> {
        let valid = input.validate()?;
        let password_hash = self.deps.hasher.hash(&valid.password).await?;
        let now = self.deps.clock.now();
        let user = User {
            id: new_id(),
            email: valid.email.as_str().to_string(),
            name: valid.name,
            role,
            password_hash,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let event = NewEvent::user(EventType::UserCreated, &user, now).traced(client.trace_id.as_deref());
        let audit = AuditRecord::new(client, &Actor::Anonymous, what, target("user", &user.id), now);
        let audit = if what == action::USER_REGISTERED { audit.by_user(&user.id) } else { audit };
        self.deps.users.insert(&user, &event, &audit).await?;
        tracing::info!(user_id = %user.id, role = role.as_str(), "user created");
        Ok(user)
    }

    pub async fn me(&self, actor: &Actor) -> DomainResult<User> {
        let me = actor.require_user()?;
        actor.require_scope(Scope::UsersRead)?;
        self.deps.users.get(&me.user_id).await?.ok_or_else(|| DomainError::unauthenticated("the user no longer exists"))
    }

    pub async fn get(&self, actor: &Actor, id: &str) -> DomainResult<UserView> {
        actor.require_scope(Scope::UsersRead)?;
        let user = self.load(id).await?;
        Ok(UserView::of(actor, user))
    }

    /// Admins see every field; everyone else gets public profiles.
    pub async fn list(&self, actor: &Actor, page: &PageRequest) -> DomainResult<Page<UserView>> {
        actor.require_scope(Scope::UsersRead)?;
        let rows = self.deps.users.list(page).await?;
        Ok(Page::from_overfetch(rows, page.limit, |u| u.id.clone()).map(|u| UserView::of(actor, u)))
    }

    /// Many users by id, each in the caller's view; unknown ids are skipped.
    pub async fn get_many(&self, actor: &Actor, ids: &[String]) -> DomainResult<Vec<UserView>> {
        actor.require_scope(Scope::UsersRead)?;
        let users = self.deps.users.get_many(ids).await?;
        Ok(users.into_iter().map(|u| UserView::of(actor, u)).collect())
    }

    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn update(
        &self,
        actor: &Actor,
        id: &str,
        patch: UserPatch,
        expected_version: Option<i64>,
        client: &ClientInfo,
    ) -> DomainResult<User> {
        actor.require_user()?;
        actor.require_scope(Scope::UsersWrite)?;
        let mut user = self.load_current(id).await?;
        if !policy::can_edit_user(actor, &user) {
            return Err(DomainError::forbidden("you may only edit your own profile"));
        }
        let patch = patch.validate()?;
        if patch.role.is_some_and(|r| r != user.role) && !policy::can_change_role(actor) {
            return Err(DomainError::forbidden("only admins change roles").with_detail("role", "forbidden"));
        }
        check_version(user.version, expected_version)?;
        if patch.is_empty() {
            return Ok(user);
        }
        let previous = user.version;
        if let Some(email) = patch.email {
            user.email = email.as_str().to_string();
        }
        if let Some(name) = patch.name {
            user.name = name;
        }
        let mut what = action::USER_UPDATED;
        if let Some(role) = patch.role {
            if role != user.role {
                what = action::USER_ROLE_CHANGED;
            }
            user.role = role;
        }
        user.version += 1;
        user.updated_at = self.deps.clock.now();
        let event = NewEvent::user(EventType::UserUpdated, &user, user.updated_at).traced(client.trace_id.as_deref());
        let audit = AuditRecord::new(client, actor, what, target("user", &user.id), user.updated_at);
        self.deps.users.update(&user, previous, &event, &audit).await?;
        Ok(user)
    }

    /// Admins only. Deletes the user's posts, keys and sessions with them.
    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn delete(
        &self,
        actor: &Actor,
        id: &str,
        expected_version: Option<i64>,
        client: &ClientInfo,
    ) -> DomainResult<()> {
        actor.require_user()?;
        actor.require_scope(Scope::UsersWrite)?;
        if !policy::can_delete_user(actor) {
            return Err(DomainError::forbidden("only admins delete users"));
        }
        let user = self.load_current(id).await?;
        check_version(user.version, expected_version)?;
        let now = self.deps.clock.now();
        let event = NewEvent::user(EventType::UserDeleted, &user, now).traced(client.trace_id.as_deref());
        let audit = AuditRecord::new(client, actor, action::USER_DELETED, target("user", &user.id), now);
        self.deps.users.delete(&user, &event, &audit).await
    }

    /// Operator tooling (`polyport users`, run by whoever holds the database): the stored user
    /// named by email or id.
    pub async fn find_for_operator(&self, who: &str) -> DomainResult<User> {
        let found = match who.contains('@') {
            true => self.deps.users.get_by_email(&who.trim().to_lowercase()).await?,
            false => self.deps.users.get_current(who.trim()).await?,
        };
        found.ok_or_else(|| DomainError::not_found("user").with_detail("user", "not_found"))
    }

    /// Operator tooling: moves a user up (`Promote`) or down (`Demote`) to `role`. A change in
    /// the other direction, or to the role the user has, is refused. Takes effect on every
    /// protocol at the user's next call (admission reads the role from the user record).
    /// Returns the role the user had and the updated user.
    pub async fn change_role(
        &self,
        who: &str,
        role: Role,
        change: RoleChange,
        client: &ClientInfo,
    ) -> DomainResult<(Role, User)> {
        let mut user = self.find_for_operator(who).await?;
        let before = user.role;
        let allowed = match change {
            RoleChange::Promote => role.rank() > before.rank(),
            RoleChange::Demote => role.rank() < before.rank(),
        };
        if !allowed {
            let verb = if change == RoleChange::Promote { "promoted" } else { "demoted" };
            return Err(DomainError::conflict(format!(
                "{} is {} already, so cannot be {verb} to {}",
                user.email,
                before.as_str(),
                role.as_str()
            ))
            .with_detail("role", "unchanged"));
        }
        let previous = user.version;
        user.role = role;
        user.version += 1;
        user.updated_at = self.deps.clock.now();
        let event = NewEvent::user(EventType::UserUpdated, &user, user.updated_at).traced(client.trace_id.as_deref());
        let audit = AuditRecord::new(
            client,
            &Actor::Anonymous,
            action::USER_ROLE_CHANGED,
            target("user", &user.id),
            user.updated_at,
        );
        self.deps.users.update(&user, previous, &event, &audit).await?;
        tracing::info!(user_id = %user.id, from = before.as_str(), to = role.as_str(), "role changed by an operator");
        Ok((before, user))
    }

    /// Operator tooling: sets a new password and signs the user out everywhere (every refresh
    /// family is revoked, so its access tokens are refused at the next call too). API keys stay.
    pub async fn reset_password(&self, who: &str, password: &str, client: &ClientInfo) -> DomainResult<User> {
        if let Err(issue) = crate::domain::user::check_password(password) {
            return Err(DomainError::validation(vec![crate::domain::error::FieldIssue::new("password", issue)]));
        }
        let mut user = self.find_for_operator(who).await?;
        user.password_hash = self.deps.hasher.hash(password).await?;
        let previous = user.version;
        user.version += 1;
        user.updated_at = self.deps.clock.now();
        let event = NewEvent::user(EventType::UserUpdated, &user, user.updated_at).traced(client.trace_id.as_deref());
        let audit = AuditRecord::new(
            client,
            &Actor::Anonymous,
            action::USER_PASSWORD_RESET,
            target("user", &user.id),
            user.updated_at,
        );
        self.deps.users.update_password(&user, previous, &event, &audit).await?;
        tracing::info!(user_id = %user.id, "password reset by an operator; sessions revoked");
        Ok(user)
    }

    async fn load(&self, id: &str) -> DomainResult<User> {
        self.deps.users.get(id).await?.ok_or_else(|| DomainError::not_found("user"))
    }

    /// For a write: the stored row, so a version compares with the store, not a cache.
    async fn load_current(&self, id: &str) -> DomainResult<User> {
        self.deps.users.get_current(id).await?.ok_or_else(|| DomainError::not_found("user"))
    }
}

/// Optimistic concurrency: a stated version must be the current one.
pub(super) fn check_version(current: i64, expected: Option<i64>) -> DomainResult<()> {
    match expected {
        Some(v) if v != current => Err(DomainError::version_mismatch()),
        _ => Ok(()),
    }
}
