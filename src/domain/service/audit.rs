//! Reading the audit log: admins only, newest first, filtered, in keyset pages.

use std::sync::Arc;

use super::Deps;
use crate::domain::audit::{AuditEntry, AuditQuery};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::page::{Page, PageRequest};
use crate::domain::policy::{self, Actor};

#[derive(Clone)]
pub struct AuditService {
    deps: Arc<Deps>,
}

impl AuditService {
    pub(super) fn new(deps: Arc<Deps>) -> Self {
        Self { deps }
    }

    /// Whether `actor` may read the audit log: UNAUTHENTICATED without credentials, FORBIDDEN
    /// for anyone but admins (asked before a cursor or filter is looked at).
    pub fn may_read(actor: &Actor) -> DomainResult<()> {
        actor.require_user()?;
        if policy::can_read_audit_log(actor) {
            Ok(())
        } else {
            Err(DomainError::forbidden("only admins read the audit log"))
        }
    }

    /// Unauthenticated callers get UNAUTHENTICATED, everyone but admins (an API key needs the
    /// `admin` scope) FORBIDDEN, before the filter is looked at. A cursor that is not an entry
    /// id is INVALID_REQUEST.
    pub async fn list(&self, actor: &Actor, query: AuditQuery, page: &PageRequest) -> DomainResult<Page<AuditEntry>> {
        Self::may_read(actor)?;
        let filter = query.validate()?;
        let filter = &filter;
        if page.after.as_deref().is_some_and(|a| a.parse::<i64>().is_err()) {
            return Err(DomainError::invalid("invalid cursor").with_detail("cursor", "invalid"));
        }
        let rows = self.deps.audit.list(filter, page).await?;
        Ok(Page::from_overfetch(rows, page.limit, |e| e.id.to_string()))
    }
}
