//! The `POST /soap` pipeline, in order: read the body within the limit, parse the envelope,
//! header blocks (MustUnderstand), operation and action, credentials (HTTP header or
//! WS-Security) and admission, the request element, the canonical operation (idempotent with
//! an `IdempotencyKey` header block), and the answer in the SOAP version that was asked.

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::SoapState;
use super::envelope::{self, Envelope, Limits, ParseError, Version};
use super::error::Fault;
use super::headers;
use super::input::Input;
use super::ops::{Call, dispatch};
use super::schema::{self, NS, Operation};
use super::security;
use crate::adapters::request::{declares_more_than, header_str};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::policy::Actor;
use crate::domain::service::ClientInfo;
use crate::platform::authn::Authenticated;
use crate::platform::ratelimit::Decision;

/// An answer on its way to the wire.
struct Reply {
    status: StatusCode,
    content_type: String,
    body: Vec<u8>,
    retry_after: Option<u64>,
    replayed: bool,
}

impl Reply {
    fn ok(version: Version, body: Vec<u8>) -> Self {
        Self {
            status: StatusCode::OK,
            content_type: version.content_type().into(),
            body,
            retry_after: None,
            replayed: false,
        }
    }
}

impl From<Fault> for Reply {
    fn from(fault: Fault) -> Self {
        let response = fault.into_response_parts();
        Self {
            status: response.0,
            content_type: response.2.content_type().into(),
            body: response.1,
            retry_after: response.3,
            replayed: false,
        }
    }
}

impl Fault {
    /// Records the fault for the request's log line and renders it: (status, bytes, version,
    /// retry-after).
    fn into_response_parts(self) -> (StatusCode, Vec<u8>, Version, Option<u64>) {
        self.record();
        let (status, body) = self.render();
        (status, body, self.version, self.retry_after())
    }
}

/// The version a media type announces, and its `action` parameter (SOAP 1.2).
fn media_type(headers: &HeaderMap) -> (Option<Version>, Option<String>) {
    let Some(ct) = header_str(headers, "content-type") else { return (None, None) };
    let mut parts = ct.split(';').map(str::trim);
    let version = match parts.next().map(str::to_ascii_lowercase).as_deref() {
        Some("text/xml") => Some(Version::Soap11),
        Some("application/soap+xml") => Some(Version::Soap12),
        _ => None,
    };
    let action = parts
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("action"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string());
    (version, action)
}

/// Charges a request refused before its caller is fully known to whoever its HTTP credential
/// names (the address when it names nobody valid), as admission does.
async fn charge_refusal(s: &SoapState, http: &DomainResult<Authenticated>, ip: &str) -> Decision {
    let probe = match http {
        Ok(auth) => Ok(auth.clone()),
        Err(_) => Err(DomainError::unauthenticated("")),
    };
    s.shared.admission.admit_with(probe, ip, 1).await.decision
}

pub async fn call(State(s): State<SoapState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let ip = parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip().to_string());
    let client = crate::platform::request_id::client_info(ip.clone());
    let ip = ip.unwrap_or_else(|| "unknown".into());
    let mut decision = None;
    let reply = match serve(&s, &parts.headers, body, &client, &ip, &mut decision).await {
        Ok(reply) => reply,
        Err(fault) => Reply::from(fault),
    };
    let mut response = (reply.status, reply.body).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&reply.content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Some(secs) = reply.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if reply.replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    if let Some(d) = decision {
        crate::adapters::request::rate_limit_headers(headers, &d);
    }
    response
}

async fn serve(
    s: &SoapState,
    headers: &HeaderMap,
    body: Body,
    client: &ClientInfo,
    ip: &str,
    decision: &mut Option<Decision>,
) -> Result<Reply, Fault> {
    let presented = crate::adapters::request::credentials(headers);
    let http_auth = s.shared.admission.authenticate(presented).await;
    // Until the caller is known, every refusal is charged as admission charges it.
    let (hinted, action_param) = media_type(headers);
    let limits = Limits { max_bytes: Limits::default().max_bytes.min(s.shared.limits.body_bytes), ..Limits::default() };
    let fallback = hinted.unwrap_or(Version::Soap11);
    let read = if declares_more_than(headers, limits.max_bytes) {
        Err(())
    } else {
        axum::body::to_bytes(body, limits.max_bytes).await.map_err(|_| ())
    };
    let Ok(bytes) = read else {
        *decision = Some(charge_refusal(s, &http_auth, ip).await);
        return Err(Fault::parse(fallback, ParseError::TooLarge));
    };
    let env = match envelope::parse_with(&bytes, &limits) {
        Ok(env) => env,
        Err(e) => {
            *decision = Some(charge_refusal(s, &http_auth, ip).await);
            return Err(Fault::parse(e.version().unwrap_or(fallback), e));
        }
    };
    let v = env.version;
    let prelude = prelude(&env, hinted, headers, action_param);
    let (op, blocks) = match prelude {
        Ok(found) => found,
        Err(fault) => {
            *decision = Some(charge_refusal(s, &http_auth, ip).await);
            return Err(fault);
        }
    };
    let auth = authenticate(s, http_auth, blocks.security, client).await;
    let verdict = s.shared.admission.admit_with(auth, ip, 1).await;
    *decision = Some(verdict.decision);
    let admitted = verdict.admitted.map_err(|e| Fault::domain(v, e))?;
    let input = Input::read(&env.body, op.input).map_err(|e| Fault::domain(v, e))?;
    let call =
        Call { shared: &s.shared, caller: &admitted, version: v, op, input, idempotency_key: blocks.idempotency_key };
    Ok(match dispatch(call).await {
        Ok((bytes, replayed)) => Reply { replayed, ..Reply::ok(v, bytes) },
        Err(e) => {
            let replayed = e.replayed;
            Reply { replayed, ..Reply::from(Fault::domain(v, e)) }
        }
    })
}

/// Media type, header blocks, operation and action: everything checked before credentials.
fn prelude<'e>(
    env: &'e Envelope,
    hinted: Option<Version>,
    headers: &HeaderMap,
    action_param: Option<String>,
) -> Result<(&'static Operation, headers::Headers<'e>), Fault> {
    let v = env.version;
    let invalid = |message: &str, field: &str, issue: &str| {
        Fault::domain(v, DomainError::invalid(message.to_string()).with_detail(field, issue))
    };
    let Some(binding) = hinted else {
        return Err(invalid(
            "expected Content-Type text/xml (SOAP 1.1) or application/soap+xml (SOAP 1.2)",
            "content-type",
            "unsupported",
        ));
    };
    // text/xml carries SOAP 1.1 envelopes and application/soap+xml SOAP 1.2 ones; a client
    // that mixes them is told so in the version its media type announced.
    if binding != v {
        return Err(Fault::version_mismatch(binding));
    }
    let blocks = headers::read(env)?;
    let op = Some(&env.body)
        .filter(|b| b.ns.as_deref() == Some(NS))
        .and_then(|b| schema::operation(&b.name))
        .ok_or_else(|| invalid(&format!("unknown operation `{}`", env.body.name), "body", "unknown_operation"))?;
    // WS-I Basic Profile R2744: a SOAP 1.1 request carries SOAPAction (an empty "" states no
    // intent and is accepted); in SOAP 1.2 the action parameter is optional.
    let action = match v {
        Version::Soap11 => match header_str(headers, "soapaction") {
            Some(a) => Some(a.trim().trim_matches('"').to_string()),
            None => return Err(invalid("SOAP 1.1 requests carry a SOAPAction header", "soapAction", "required")),
        },
        Version::Soap12 => action_param,
    };
    if action.is_some_and(|a| !a.is_empty() && a != schema::action(op)) {
        return Err(invalid("the SOAP action does not match the body's operation", "soapAction", "mismatch"));
    }
    Ok((op, blocks))
}

/// The caller: an HTTP credential or a WS-Security UsernameToken (one, not both), else anonymous.
async fn authenticate(
    s: &SoapState,
    http: DomainResult<Authenticated>,
    security: Option<&envelope::Element>,
    client: &ClientInfo,
) -> DomainResult<Authenticated> {
    let token = match security {
        Some(block) => security::username_token(block)?,
        None => None,
    };
    let http = http?;
    match (&http.actor, token) {
        (_, None) => Ok(http),
        (Actor::Anonymous, Some(token)) => {
            let now = s.shared.core.deps.clock.now();
            let principal = security::authenticate(&s.shared.core, &s.nonces, token, client, now).await?;
            Ok(Authenticated { actor: Actor::User(principal), expires_at: None })
        }
        (Actor::User(_), Some(_)) => {
            Err(DomainError::unauthenticated("send either an HTTP credential or a WS-Security token, not both"))
        }
    }
}
