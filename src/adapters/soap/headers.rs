//! SOAP header blocks: which are addressed to us (actor/role), which we understand
//! (wsse:Security, IdempotencyKey), and the MustUnderstand rule for the rest.

use super::envelope::{Element, Envelope, Version};
use super::error::{Fault, FaultKind};
use super::schema::{IDEMPOTENCY_KEY, NS};
use super::security::WSSE_NS;
use crate::domain::error::DomainError;

const ACTOR_NEXT_11: &str = "http://schemas.xmlsoap.org/soap/actor/next";
const ROLE_NEXT_12: &str = "http://www.w3.org/2003/05/soap-envelope/role/next";
const ROLE_ULTIMATE_12: &str = "http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver";

/// The header blocks this endpoint acts on.
#[derive(Debug, Default)]
pub struct Headers<'a> {
    pub security: Option<&'a Element>,
    pub idempotency_key: Option<String>,
}

fn invalid(version: Version, message: &str, field: &str, issue: &str) -> Fault {
    Fault::domain(version, DomainError::invalid(message.to_string()).with_detail(field, issue))
}

/// Reads the header blocks addressed to us; unknown ones marked mustUnderstand are a fault.
pub fn read(env: &Envelope) -> Result<Headers<'_>, Fault> {
    let v = env.version;
    let env_ns = Some(v.namespace());
    let mut out = Headers::default();
    let mut not_understood = Vec::new();
    for block in &env.headers {
        let for_us = match v {
            Version::Soap11 => block.attr(env_ns, "actor").is_none_or(|a| a.trim() == ACTOR_NEXT_11),
            Version::Soap12 => {
                block.attr(env_ns, "role").is_none_or(|r| [ROLE_NEXT_12, ROLE_ULTIMATE_12].contains(&r.trim()))
            }
        };
        if !for_us {
            continue;
        }
        let must = match block.attr(env_ns, "mustUnderstand").map(str::trim) {
            None | Some("0") => false,
            Some("1") => true,
            Some("true") if v == Version::Soap12 => true,
            Some("false") if v == Version::Soap12 => false,
            Some(_) => return Err(invalid(v, "invalid mustUnderstand value", "mustUnderstand", "invalid_value")),
        };
        if block.is(WSSE_NS, "Security") {
            if out.security.replace(block).is_some() {
                return Err(invalid(v, "only one wsse:Security header is allowed", "security", "duplicate"));
            }
        } else if block.is(NS, IDEMPOTENCY_KEY) {
            if !block.children.is_empty() {
                return Err(invalid(v, "IdempotencyKey must hold text only", "idempotencyKey", "invalid_type"));
            }
            if out.idempotency_key.replace(block.text.trim().to_string()).is_some() {
                return Err(invalid(v, "only one IdempotencyKey header is allowed", "idempotencyKey", "duplicate"));
            }
        } else if must {
            not_understood.push((block.ns.clone().unwrap_or_default(), block.name.clone()));
        }
    }
    if !not_understood.is_empty() {
        return Err(Fault { version: v, kind: FaultKind::MustUnderstand(not_understood) });
    }
    Ok(out)
}
