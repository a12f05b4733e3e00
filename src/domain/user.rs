//! Users: the entity, its role, and the validating inputs that create and change it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::{DomainResult, Issues};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Editor,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Member => "member",
        }
    }

    /// Member < editor < admin.
    pub fn rank(self) -> u8 {
        match self {
            Role::Member => 0,
            Role::Editor => 1,
            Role::Admin => 2,
        }
    }

    pub fn parse(s: &str) -> Result<Role, &'static str> {
        match s {
            "admin" => Ok(Role::Admin),
            "editor" => Ok(Role::Editor),
            "member" => Ok(Role::Member),
            _ => Err("must be one of admin, editor, member"),
        }
    }
}

/// A stored user. `password_hash` never leaves the core and storage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    #[serde(skip)]
    pub password_hash: String,
    #[serde(serialize_with = "super::timestamp::serialize", deserialize_with = "super::timestamp::deserialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "super::timestamp::serialize", deserialize_with = "super::timestamp::deserialize")]
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// A validated email address: an RFC 5322 addr-spec subset, at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, &'static str> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("required");
        }
        if s.len() > 254 {
            return Err("too_long");
        }
        let (local, domain) = s.rsplit_once('@').ok_or("invalid_format")?;
        let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && local.split('.').all(|part| !part.is_empty() && part.chars().all(atext));
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        let domain_ok = domain.contains('.') && domain.split('.').all(label_ok);
        if local_ok && domain_ok { Ok(Email(s.to_string())) } else { Err("invalid_format") }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive key used for uniqueness.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A display name: 1..=100 characters after trimming, no control characters.
pub fn parse_name(raw: &str) -> Result<String, &'static str> {
    let s = raw.trim();
    let n = s.chars().count();
    if n == 0 {
        Err("required")
    } else if n > 100 {
        Err("too_long")
    } else if s.chars().any(char::is_control) {
        Err("invalid_characters")
    } else {
        Ok(s.to_string())
    }
}

/// A password: 12..=128 characters. Only checked, never stored in clear.
pub fn check_password(raw: &str) -> Result<(), &'static str> {
    match raw.chars().count() {
        0 => Err("required"),
        n if n < 12 => Err("too_short"),
        n if n > 128 => Err("too_long"),
        _ => Ok(()),
    }
}

/// Registration input before validation.
#[derive(Debug, Clone)]
pub struct RegisterUser {
    pub email: String,
    pub name: String,
    pub password: String,
}

/// Registration input after validation.
#[derive(Debug, Clone)]
pub struct ValidRegistration {
    pub email: Email,
    pub name: String,
    pub password: String,
}

impl RegisterUser {
    pub fn validate(self) -> DomainResult<ValidRegistration> {
        let mut issues = Issues::default();
        let email = issues.check("email", Email::parse(&self.email));
        let name = issues.check("name", parse_name(&self.name));
        issues.check("password", check_password(&self.password));
        issues.finish()?;
        Ok(ValidRegistration { email: email.unwrap(), name: name.unwrap(), password: self.password })
    }
}

/// A partial update of a user; absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: Option<String>,
}

/// A validated partial update.
#[derive(Debug, Clone, Default)]
pub struct ValidUserPatch {
    pub email: Option<Email>,
    pub name: Option<String>,
    pub role: Option<Role>,
}

impl UserPatch {
    pub fn validate(self) -> DomainResult<ValidUserPatch> {
        let mut issues = Issues::default();
        let email = self.email.and_then(|e| issues.check("email", Email::parse(&e)));
        let name = self.name.and_then(|n| issues.check("name", parse_name(&n)));
        let role = self.role.and_then(|r| issues.check("role", Role::parse(&r)));
        issues.finish()?;
        Ok(ValidUserPatch { email, name, role })
    }
}

impl ValidUserPatch {
    pub fn is_empty(&self) -> bool {
        self.email.is_none() && self.name.is_none() && self.role.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_follow_the_addr_spec_subset() {
        for ok in ["a@b.co", "first.last+tag@sub.example.org", "x_y@ex-ample.com"] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a", "a@b", "@b.co", "a@.co", "a..b@c.co", "a@-b.co", "a b@c.co", "a@b_c.co"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Email::parse(&format!("{}@b.co", "a".repeat(65))), Err("invalid_format"));
    }

    #[test]
    fn registration_reports_every_invalid_field_at_once() {
        let err =
            RegisterUser { email: "nope".into(), name: " ".into(), password: "short".into() }.validate().unwrap_err();
        let fields: Vec<_> = err.details.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["email", "name", "password"]);
    }
}
