//! Reads an operation's request element against its schema fields: unknown or repeated
//! elements and wrong types are INVALID_REQUEST; field rules are left to the core.

use super::envelope::Element;
use super::schema::{Field, NS, Ty};
use crate::domain::error::{DomainError, DomainResult};

/// The checked children of a request element.
#[derive(Debug)]
pub struct Input<'a> {
    el: &'a Element,
}

fn invalid(field: &str, issue: &str, message: String) -> DomainError {
    DomainError::invalid(message).with_detail(field, issue)
}

/// Checks `el`'s children against `fields` (names, namespace, occurrences, nesting, types).
fn check(el: &Element, fields: &[Field], path: &str) -> DomainResult<()> {
    let mut counts = vec![0usize; fields.len()];
    for child in &el.children {
        let at = format!("{path}{}", child.name);
        let index =
            fields.iter().position(|f| f.name == child.name && child.ns.as_deref() == Some(NS)).ok_or_else(|| {
                invalid(&at, "unknown_field", format!("unknown element `{}` in `{}`", child.name, el.name))
            })?;
        let field = &fields[index];
        counts[index] += 1;
        if counts[index] > 1 && !field.many {
            return Err(invalid(&at, "duplicate", format!("`{}` may appear only once", child.name)));
        }
        match field.ty {
            Ty::Complex(ty) => check(child, ty.fields, &format!("{at}."))?,
            simple => {
                if !child.children.is_empty() {
                    return Err(invalid(&at, "invalid_type", format!("`{}` must hold text only", child.name)));
                }
                if matches!(simple, Ty::Long | Ty::Int) && child.text.trim().parse::<i64>().is_err() {
                    return Err(invalid(&at, "invalid_type", format!("`{}` must be an integer", child.name)));
                }
            }
        }
    }
    Ok(())
}

impl<'a> Input<'a> {
    pub fn read(el: &'a Element, fields: &[Field]) -> DomainResult<Self> {
        check(el, fields, "")?;
        Ok(Self { el })
    }

    fn get(&self, name: &str) -> Option<&'a Element> {
        self.el.child(NS, name)
    }

    /// The text of an optional field.
    pub fn opt(&self, name: &str) -> Option<String> {
        self.get(name).map(|e| e.text.clone())
    }

    /// The text of a field the core validates (absent reads as empty, like a missing JSON field).
    pub fn text(&self, name: &str) -> String {
        self.opt(name).unwrap_or_default()
    }

    /// An identifier: required here, since an absent id can only be a mistake.
    pub fn id(&self, name: &str) -> DomainResult<String> {
        self.opt(name)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| DomainError::validation(vec![crate::domain::FieldIssue::new(name, "required")]))
    }

    /// An integer field (its type was checked by `read`).
    pub fn int(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(|e| e.text.trim().parse().ok())
    }

    /// A `TagList` field: None when absent (keep), else the listed tags (possibly none).
    pub fn tags(&self, name: &str) -> Option<Vec<String>> {
        self.get(name).map(|list| list.children.iter().map(|t| t.text.clone()).collect())
    }
}
