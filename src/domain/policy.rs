//! Who may do what: the caller (`Actor`), API-key scopes and pure permission functions.
//!
//! Every service asks these functions, and event delivery asks the same ones, so a rule holds
//! identically on every protocol.

use super::error::{DomainError, DomainResult};
use super::post::{Post, PostStatus};
use super::user::{Role, User};

/// Permissions an API key may be narrowed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    PostsRead,
    PostsWrite,
    UsersRead,
    UsersWrite,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 5] =
        [Scope::PostsRead, Scope::PostsWrite, Scope::UsersRead, Scope::UsersWrite, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::PostsRead => "posts:read",
            Scope::PostsWrite => "posts:write",
            Scope::UsersRead => "users:read",
            Scope::UsersWrite => "users:write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Scope, &'static str> {
        Scope::ALL.into_iter().find(|sc| sc.as_str() == s).ok_or("unknown_scope")
    }
}

/// How the caller proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A JWT access token (`jti` and refresh-token family `sid`).
    AccessToken { jti: String, session_id: String },
    /// An API key, narrowed to its scopes.
    ApiKey { key_id: String, scopes: Vec<Scope> },
}

/// An authenticated user acting through a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: String,
    pub role: Role,
    pub credential: Credential,
}

/// The caller of a core operation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Actor {
    #[default]
    Anonymous,
    User(Principal),
}

impl Actor {
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Actor::Anonymous => None,
            Actor::User(p) => Some(p),
        }
    }

    pub fn user_id(&self) -> Option<&str> {
        self.principal().map(|p| p.user_id.as_str())
    }

    /// The role the caller acts with (anonymous callers have none).
    pub fn role(&self) -> Option<Role> {
        self.principal().map(|p| p.role)
    }

    /// True when the credential allows `scope` (access tokens allow every scope).
    pub fn has_scope(&self, scope: Scope) -> bool {
        match self.principal().map(|p| &p.credential) {
            Some(Credential::ApiKey { scopes, .. }) => scopes.contains(&scope),
            Some(Credential::AccessToken { .. }) => true,
            None => false,
        }
    }

    /// Anonymous callers read public data; credentials must carry `scope`.
    pub fn has_scope_or_anonymous(&self, scope: Scope) -> bool {
        self.principal().is_none() || self.has_scope(scope)
    }

    /// Fails with UNAUTHENTICATED for anonymous callers, else returns the principal.
    pub fn require_user(&self) -> DomainResult<&Principal> {
        self.principal().ok_or_else(|| DomainError::unauthenticated("authentication required"))
    }

    /// Fails with FORBIDDEN when an API key lacks `scope`.
    pub fn require_scope(&self, scope: Scope) -> DomainResult<()> {
        if self.principal().is_none() || self.has_scope(scope) {
            Ok(())
        } else {
            Err(DomainError::forbidden(format!("this API key lacks the {} scope", scope.as_str())))
        }
    }

    /// Admin role, and the `admin` scope when acting through an API key.
    pub fn is_admin(&self) -> bool {
        self.role() == Some(Role::Admin) && self.has_scope(Scope::Admin)
    }

    fn is_editor_or_admin(&self) -> bool {
        matches!(self.role(), Some(Role::Editor | Role::Admin))
    }

    fn is(&self, user_id: &str) -> bool {
        self.user_id() == Some(user_id)
    }
}

/// Published posts are public; drafts are visible to their author, editors and admins.
pub fn can_read_post(actor: &Actor, post: &Post) -> bool {
    post.status == PostStatus::Published || actor.is(&post.author_id) || actor.is_editor_or_admin()
}

/// Authors edit and delete their own posts; editors and admins any post.
pub fn can_edit_post(actor: &Actor, post: &Post) -> bool {
    actor.is(&post.author_id) || actor.is_editor_or_admin()
}

/// Authors publish their own posts; editors and admins any post.
pub fn can_publish_post(actor: &Actor, post: &Post) -> bool {
    can_edit_post(actor, post)
}

/// Only editors and admins unpublish.
pub fn can_unpublish_post(actor: &Actor) -> bool {
    actor.is_editor_or_admin()
}

/// Drafts of every author are listable by editors and admins only.
pub fn can_list_all_drafts(actor: &Actor) -> bool {
    actor.is_editor_or_admin()
}

/// Private fields (email, role, timestamps) belong to the user and admins.
pub fn can_read_private_user(actor: &Actor, user: &User) -> bool {
    actor.is(&user.id) || actor.is_admin()
}

/// The user edits their own profile; admins edit anyone.
pub fn can_edit_user(actor: &Actor, user: &User) -> bool {
    actor.is(&user.id) || actor.is_admin()
}

/// Only admins change roles.
pub fn can_change_role(actor: &Actor) -> bool {
    actor.is_admin()
}

/// Only admins delete users.
pub fn can_delete_user(actor: &Actor) -> bool {
    actor.is_admin()
}

/// Only admins see every user's private fields in lists.
pub fn can_list_private_users(actor: &Actor) -> bool {
    actor.is_admin()
}

/// A webhook is its owner's; admins may also see its deliveries and delete it.
pub fn can_manage_webhook(actor: &Actor, owner_id: &str) -> bool {
    actor.is(owner_id) || actor.is_admin()
}

/// The actor a webhook's deliveries are authorized as: its owner with the role the owner has
/// NOW (read from the stored user at each delivery), with every scope of a session.
pub fn webhook_owner(owner: &User) -> Actor {
    Actor::User(Principal {
        user_id: owner.id.clone(),
        role: owner.role,
        credential: Credential::AccessToken { jti: "webhook".into(), session_id: format!("webhook:{}", owner.id) },
    })
}

pub fn can_read_audit_log(actor: &Actor) -> bool {
    actor.is_admin()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn actor(id: &str, role: Role) -> Actor {
        Actor::User(Principal {
            user_id: id.into(),
            role,
            credential: Credential::AccessToken { jti: "j".into(), session_id: "s".into() },
        })
    }

    fn draft(author: &str) -> Post {
        let now = Utc::now();
        Post {
            id: "p".into(),
            author_id: author.into(),
            title: "t".into(),
            body: String::new(),
            status: PostStatus::Draft,
            tags: vec![],
            published_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    #[test]
    fn drafts_are_visible_to_author_editors_and_admins_only() {
        let post = draft("alice");
        assert!(can_read_post(&actor("alice", Role::Member), &post));
        assert!(can_read_post(&actor("ed", Role::Editor), &post));
        assert!(can_read_post(&actor("root", Role::Admin), &post));
        assert!(!can_read_post(&actor("bob", Role::Member), &post));
        assert!(!can_read_post(&Actor::Anonymous, &post));
    }

    #[test]
    fn an_admin_api_key_without_admin_scope_is_not_admin() {
        let key = Actor::User(Principal {
            user_id: "root".into(),
            role: Role::Admin,
            credential: Credential::ApiKey { key_id: "k".into(), scopes: vec![Scope::UsersRead] },
        });
        assert!(!key.is_admin());
        assert!(!can_change_role(&key));
    }
}
