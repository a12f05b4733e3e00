//! SOAP fault mapping, the only place that knows fault codes and HTTP statuses for domain
//! codes: Client/Sender vs Server/Receiver, VersionMismatch with the SOAP 1.2 Upgrade header,
//! MustUnderstand with NotUnderstood blocks, and the contract's error inside `<detail>`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::envelope::{ParseError, SOAP11_NS, SOAP12_NS, Version};
use super::schema::NS;
use super::writer::{XmlOut, envelope, escape};
use crate::domain::error::{DomainError, ErrorCode};
use crate::platform::request_id;

/// Writes fault header blocks into the envelope.
type HeaderWriter<'a> = Box<dyn Fn(&mut XmlOut) + 'a>;

/// Why a request failed, in SOAP terms.
#[derive(Debug)]
pub enum FaultKind {
    /// The root was not a SOAP 1.1 or 1.2 Envelope, or (`media_type`) not the version its
    /// Content-Type announces.
    VersionMismatch { media_type: bool },
    /// Header blocks marked mustUnderstand that we do not process: `(namespace, local name)`.
    MustUnderstand(Vec<(String, String)>),
    /// Any domain error: Client/Sender or Server/Receiver by its code.
    Domain(DomainError),
}

#[derive(Debug)]
pub struct Fault {
    pub version: Version,
    pub kind: FaultKind,
}

impl Fault {
    pub fn domain(version: Version, e: DomainError) -> Self {
        Self { version, kind: FaultKind::Domain(e) }
    }

    /// An envelope of the other SOAP version than the media type's, answered in the media type's.
    pub fn version_mismatch(media_type_version: Version) -> Self {
        Self { version: media_type_version, kind: FaultKind::VersionMismatch { media_type: true } }
    }

    /// The domain error of a refused envelope.
    pub fn parse(version: Version, e: ParseError) -> Self {
        match e {
            ParseError::VersionMismatch { found } => {
                tracing::debug!(%found, "soap version mismatch");
                Self { version, kind: FaultKind::VersionMismatch { media_type: false } }
            }
            ParseError::TooLarge => Self::domain(
                version,
                DomainError::new(ErrorCode::PayloadTooLarge, "the envelope is too large")
                    .with_detail("envelope", "too_large"),
            ),
            ParseError::Invalid { issue, message, .. } => {
                Self::domain(version, DomainError::invalid(message).with_detail("envelope", issue))
            }
        }
    }

    /// The code, HTTP status and whether the sender is to blame.
    fn code(&self) -> (&'static str, StatusCode) {
        let server = StatusCode::INTERNAL_SERVER_ERROR;
        let (v11, v12, status12) = match &self.kind {
            FaultKind::VersionMismatch { .. } => ("VersionMismatch", "VersionMismatch", server),
            FaultKind::MustUnderstand(_) => ("MustUnderstand", "MustUnderstand", server),
            FaultKind::Domain(e) if is_server(e.code) => ("Server", "Receiver", server),
            FaultKind::Domain(_) => ("Client", "Sender", StatusCode::BAD_REQUEST),
        };
        match self.version {
            // SOAP 1.1 over HTTP: every fault is a 500.
            Version::Soap11 => (v11, server),
            Version::Soap12 => (v12, status12),
        }
    }

    /// Where retrying may help, the seconds to wait.
    pub fn retry_after(&self) -> Option<u64> {
        match &self.kind {
            FaultKind::Domain(e) => e.retry_after,
            _ => None,
        }
    }

    pub fn error_code(&self) -> ErrorCode {
        match &self.kind {
            FaultKind::Domain(e) => e.code,
            _ => ErrorCode::InvalidRequest,
        }
    }

    /// The envelope bytes and HTTP status of the fault.
    pub fn render(&self) -> (StatusCode, Vec<u8>) {
        let (code, status) = self.code();
        let (message, details, retry_after) = match &self.kind {
            FaultKind::VersionMismatch { media_type: false } => (
                "the envelope is not a SOAP 1.1 or SOAP 1.2 Envelope".to_string(),
                vec![("envelope".to_string(), "version_mismatch".to_string())],
                None,
            ),
            FaultKind::VersionMismatch { media_type: true } => (
                "text/xml carries SOAP 1.1 envelopes and application/soap+xml SOAP 1.2 ones".to_string(),
                vec![("envelope".to_string(), "version_mismatch".to_string())],
                None,
            ),
            FaultKind::MustUnderstand(blocks) => (
                "a header block marked mustUnderstand is not understood".to_string(),
                blocks.iter().map(|(_, name)| (camel(name), "not_understood".to_string())).collect(),
                None,
            ),
            FaultKind::Domain(e) => (
                e.message.clone(),
                e.details.iter().map(|d| (camel(&d.field), d.issue.clone())).collect(),
                e.retry_after,
            ),
        };
        let our_code = self.error_code().as_str();
        let detail = |out: &mut XmlOut| {
            out.open_with("Error", &format!(r#"xmlns="{NS}""#));
            out.leaf("code", our_code).leaf("message", &message);
            for (field, issue) in &details {
                out.open("details").leaf("field", field).leaf("issue", issue).close("details");
            }
            out.leaf("requestId", &request_id::current());
            if let Some(secs) = retry_after {
                out.leaf("retryAfter", &secs.to_string());
            }
            out.close("Error");
        };
        let header = self.header();
        let body = |out: &mut XmlOut| match self.version {
            Version::Soap11 => {
                out.open("soap:Fault");
                out.leaf("faultcode", &format!("soap:{code}")).leaf("faultstring", &message);
                out.open("detail");
                detail(out);
                out.close("detail").close("soap:Fault");
            }
            Version::Soap12 => {
                out.open("soap:Fault").open("soap:Code").leaf("soap:Value", &format!("soap:{code}"));
                out.open_with("soap:Subcode", &format!(r#"xmlns:pp="{NS}""#));
                out.leaf("soap:Value", &format!("pp:{our_code}")).close("soap:Subcode").close("soap:Code");
                out.open("soap:Reason").open_with("soap:Text", r#"xml:lang="en""#);
                out.buf.push_str(&escape(&message));
                out.close("soap:Text").close("soap:Reason").open("soap:Detail");
                detail(out);
                out.close("soap:Detail").close("soap:Fault");
            }
        };
        let bytes = match &header {
            Some(h) => envelope(self.version, Some(h.as_ref()), body),
            None => envelope(self.version, None, body),
        };
        (status, bytes)
    }

    /// SOAP 1.2 header blocks of the fault: `Upgrade` for a version mismatch, `NotUnderstood`
    /// for each block not understood.
    fn header(&self) -> Option<HeaderWriter<'_>> {
        if self.version != Version::Soap12 {
            return None;
        }
        match &self.kind {
            FaultKind::VersionMismatch { .. } => Some(Box::new(|out: &mut XmlOut| {
                out.open("soap:Upgrade");
                for (i, ns) in [SOAP12_NS, SOAP11_NS].iter().enumerate() {
                    out.buf.push_str(&format!(r#"<soap:SupportedEnvelope qname="v{i}:Envelope" xmlns:v{i}="{ns}"/>"#));
                }
                out.close("soap:Upgrade");
            })),
            FaultKind::MustUnderstand(blocks) => Some(Box::new(move |out: &mut XmlOut| {
                for (ns, name) in blocks {
                    out.buf.push_str(&format!(
                        r#"<soap:NotUnderstood qname="nu:{}" xmlns:nu="{}"/>"#,
                        escape(name),
                        escape(ns)
                    ));
                }
            })),
            FaultKind::Domain(_) => None,
        }
    }
}

impl Fault {
    /// Records the fault for the request's one log line.
    pub fn record(&self) {
        match &self.kind {
            FaultKind::Domain(e) => request_id::record(e),
            FaultKind::VersionMismatch { .. } => {
                request_id::record(&DomainError::invalid("SOAP version mismatch"));
            }
            FaultKind::MustUnderstand(_) => {
                request_id::record(&DomainError::invalid("a mustUnderstand header block was not understood"));
            }
        }
    }
}

impl IntoResponse for Fault {
    fn into_response(self) -> Response {
        self.record();
        let (status, body) = self.render();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(self.version.content_type()));
        if let Some(secs) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// UNAVAILABLE and INTERNAL are the server's fault; everything else the sender's.
fn is_server(code: ErrorCode) -> bool {
    matches!(code, ErrorCode::Unavailable | ErrorCode::Internal)
}

/// `author_id` -> `authorId`, the SOAP spelling of the domain's snake_case field paths.
pub fn camel(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut upper = false;
    for c in field.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_faults_are_400_in_soap_12_and_500_in_soap_11() {
        let f = Fault::domain(Version::Soap12, DomainError::not_found("post"));
        assert_eq!(f.render().0, StatusCode::BAD_REQUEST);
        let f = Fault::domain(Version::Soap11, DomainError::not_found("post"));
        let (status, body) = f.render();
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(String::from_utf8(body).unwrap().contains("<faultcode>soap:Client</faultcode>"));
        let f = Fault::domain(Version::Soap12, DomainError::unavailable("down"));
        assert_eq!(f.render().0, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn field_paths_are_lower_camel_case() {
        assert_eq!(camel("author_id"), "authorId");
        assert_eq!(camel("tags[2]"), "tags[2]");
    }
}
