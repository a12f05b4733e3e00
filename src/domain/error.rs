//! The one error model shared by every protocol: codes, field issues and the domain error.

use std::fmt;

/// Stable, protocol-neutral error codes. Each adapter maps them once to its wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Unparseable input, wrong types, unknown fields.
    InvalidRequest,
    /// Input parsed but broke a field rule.
    ValidationFailed,
    /// Missing, malformed, expired or revoked credentials.
    Unauthenticated,
    /// Authenticated but not allowed.
    Forbidden,
    /// Absent, or not visible to the caller.
    NotFound,
    /// Duplicate unique value or version mismatch.
    Conflict,
    /// Same idempotency key used with a different request.
    IdempotencyKeyReused,
    /// Same idempotency key still being processed.
    IdempotencyInProgress,
    /// Request larger than allowed.
    PayloadTooLarge,
    /// Too many requests; retry later.
    RateLimited,
    /// Store down or server draining.
    Unavailable,
    /// Anything unexpected; details are logged only.
    Internal,
}

impl ErrorCode {
    /// Failures worth retrying with the same idempotency key (nothing was decided).
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Internal | Self::Unavailable | Self::RateLimited | Self::IdempotencyInProgress)
    }

    pub fn parse(s: &str) -> Option<ErrorCode> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub const ALL: [ErrorCode; 12] = [
        Self::InvalidRequest,
        Self::ValidationFailed,
        Self::Unauthenticated,
        Self::Forbidden,
        Self::NotFound,
        Self::Conflict,
        Self::IdempotencyKeyReused,
        Self::IdempotencyInProgress,
        Self::PayloadTooLarge,
        Self::RateLimited,
        Self::Unavailable,
        Self::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "INVALID_REQUEST",
            Self::ValidationFailed => "VALIDATION_FAILED",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::Conflict => "CONFLICT",
            Self::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Self::IdempotencyInProgress => "IDEMPOTENCY_IN_PROGRESS",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::RateLimited => "RATE_LIMITED",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem with one input field (`field` uses the REST snake_case path, e.g. `tags[2]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldIssue {
    pub field: String,
    pub issue: String,
}

impl FieldIssue {
    pub fn new(field: impl Into<String>, issue: impl Into<String>) -> Self {
        Self { field: field.into(), issue: issue.into() }
    }
}

/// The domain error every service returns. It knows nothing about any wire format.
#[derive(Debug)]
pub struct DomainError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Vec<FieldIssue>,
    /// Seconds after which a retry may succeed (rate limits, unavailability).
    pub retry_after: Option<u64>,
    /// True when a CONFLICT comes from an optimistic-concurrency version check.
    pub version_mismatch: bool,
    /// True when this is the kept outcome of an earlier call with the same idempotency key.
    pub replayed: bool,
    /// The internal cause, logged and never sent to clients.
    pub source: Option<anyhow::Error>,
}

pub type DomainResult<T> = Result<T, DomainError>;

impl DomainError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: Vec::new(),
            retry_after: None,
            version_mismatch: false,
            replayed: false,
            source: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    pub fn validation(details: Vec<FieldIssue>) -> Self {
        let mut e = Self::new(ErrorCode::ValidationFailed, "one or more fields are invalid");
        e.details = details;
        e
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    pub fn version_mismatch() -> Self {
        let mut e = Self::conflict("the resource was modified by someone else; fetch it again");
        e.version_mismatch = true;
        e.details = vec![FieldIssue::new("version", "mismatch")];
        e
    }

    pub fn rate_limited(retry_after: u64) -> Self {
        let mut e = Self::new(ErrorCode::RateLimited, "too many requests; slow down");
        e.retry_after = Some(retry_after.max(1));
        e
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorCode::Unavailable, message);
        e.retry_after = Some(1);
        e
    }

    /// An unexpected failure: the cause is kept for the logs, the client sees a generic message.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        let mut e = Self::new(ErrorCode::Internal, "internal error");
        e.source = Some(cause.into());
        e
    }

    pub fn with_detail(mut self, field: impl Into<String>, issue: impl Into<String>) -> Self {
        self.details.push(FieldIssue::new(field, issue));
        self
    }
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(source) = &self.source {
            write!(f, " ({source:#})")?;
        }
        Ok(())
    }
}

impl std::error::Error for DomainError {}

/// Collects field issues so every invalid field is reported at once.
#[derive(Debug, Default)]
pub struct Issues(Vec<FieldIssue>);

impl Issues {
    pub fn add(&mut self, field: impl Into<String>, issue: impl Into<String>) {
        self.0.push(FieldIssue::new(field, issue));
    }

    /// Records the error of a field check, returning the value when it passed.
    pub fn check<T>(&mut self, field: &str, result: Result<T, &'static str>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(issue) => {
                self.add(field, issue);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Ok when nothing was recorded, else VALIDATION_FAILED with every issue.
    pub fn finish(self) -> DomainResult<()> {
        if self.0.is_empty() { Ok(()) } else { Err(DomainError::validation(self.0)) }
    }
}
