//! W3C Trace Context (`traceparent`/`tracestate`), protocol-neutral: parsing what a client
//! sent (an invalid value is ignored, as the spec asks), starting a trace when none came, and
//! the child span a hop of ours takes.

/// Longest `tracestate` kept (the spec allows 32 members of at most 256 characters each; we
/// keep what fits 512 bytes and drop the rest rather than refuse the request).
const MAX_TRACESTATE: usize = 512;

/// A request's place in a distributed trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lowercase hex digits, never all zero.
    pub trace_id: String,
    /// 16 lowercase hex digits, never all zero: the span this context names (the caller's
    /// span when parsed, ours after `child`).
    pub span_id: String,
    /// Trace flags (bit 0: sampled).
    pub flags: u8,
    /// The vendor `tracestate`, passed along untouched (bounded).
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// A new trace (sampled), for a request that brought none.
    pub fn root() -> Self {
        Self { trace_id: random_hex(16), span_id: random_hex(8), flags: 1, tracestate: None }
    }

    /// The same trace with a new span id: the span of the next hop.
    pub fn child(&self) -> Self {
        Self { span_id: random_hex(8), ..self.clone() }
    }

    /// The `traceparent` header value naming this span.
    pub fn to_traceparent(&self) -> String {
        let mut out = String::with_capacity(55);
        for part in ["00-", &self.trace_id, "-", &self.span_id, "-"] {
            out.push_str(part);
        }
        push_hex(&mut out, u128::from(self.flags), 2);
        out
    }

    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// What a server does with a request's headers: the client's trace continued in a span of
    /// ours, or a new trace when none (or an invalid one) was sent. `tracestate` is only kept
    /// with a valid `traceparent`.
    pub fn continue_or_start(traceparent: Option<&str>, tracestate: Option<&str>) -> Self {
        Self::parent(traceparent, tracestate).map_or_else(Self::root, |p| p.child())
    }

    /// The client's span from its headers (None when absent or invalid), with its `tracestate`.
    pub fn parent(traceparent: Option<&str>, tracestate: Option<&str>) -> Option<Self> {
        let mut parent = traceparent.and_then(parse_traceparent)?;
        parent.tracestate = tracestate.and_then(clean_tracestate);
        Some(parent)
    }
}

/// Parses a `traceparent` value; None when it is not valid (all-zero ids, uppercase hex, a
/// wrong length, version `ff`). A future version is read by its first four fields, as the spec
/// asks.
pub fn parse_traceparent(value: &str) -> Option<TraceContext> {
    let value = value.trim();
    let mut parts = value.split('-');
    let (version, trace_id, span_id, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if !is_hex(version, 2) || version == "ff" {
        return None;
    }
    if version == "00" && (parts.next().is_some() || value.len() != 55) {
        return None;
    }
    if !is_hex(trace_id, 32) || !is_hex(span_id, 16) || !is_hex(flags, 2) {
        return None;
    }
    if trace_id.bytes().all(|b| b == b'0') || span_id.bytes().all(|b| b == b'0') {
        return None;
    }
    Some(TraceContext {
        trace_id: trace_id.to_string(),
        span_id: span_id.to_string(),
        flags: u8::from_str_radix(flags, 16).ok()?,
        tracestate: None,
    })
}

/// True for a trace id as the spec writes it (32 lowercase hex digits, not all zero).
pub fn is_trace_id(s: &str) -> bool {
    is_hex(s, 32) && !s.bytes().all(|b| b == b'0')
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A `tracestate` of printable ASCII, bounded; None when empty or unusable.
fn clean_tracestate(value: &str) -> Option<String> {
    let value = value.trim();
    if value.is_empty() || value.len() > MAX_TRACESTATE || !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return None;
    }
    Some(value.to_string())
}

/// `bytes` random bytes (8 or 16) as lowercase hex, never all zero.
fn random_hex(bytes: usize) -> String {
    let digits = if bytes >= 16 { 32 } else { 16 };
    loop {
        let value: u128 = rand::random();
        let value = if digits == 32 { value } else { u128::from(value as u64) };
        if value != 0 {
            let mut out = String::with_capacity(digits);
            push_hex(&mut out, value, digits);
            return out;
        }
    }
}

/// The low `digits` hex digits of `value`, zero-padded, lowercase.
fn push_hex(out: &mut String, value: u128, digits: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 32];
    let digits = digits.min(32);
    for (i, slot) in buf[..digits].iter_mut().enumerate() {
        *slot = HEX[((value >> ((digits - 1 - i) * 4)) & 0xf) as usize];
    }
    out.push_str(std::str::from_utf8(&buf[..digits]).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_trace_names_itself_in_a_valid_traceparent() {
        for _ in 0..200 {
            let ours = TraceContext::root();
            assert_eq!((ours.trace_id.len(), ours.span_id.len()), (32, 16));
            let header = ours.to_traceparent();
            assert_eq!(header, format!("00-{}-{}-01", ours.trace_id, ours.span_id));
            assert_eq!(TraceContext::parent(Some(&header), None), Some(ours));
        }
    }

    #[test]
    fn a_valid_traceparent_is_continued_in_a_new_span() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let ctx = TraceContext::continue_or_start(Some(parent), Some("congo=t61rcWkgMzE"));
        assert_eq!(ctx.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(ctx.span_id, "00f067aa0ba902b7");
        assert_eq!(ctx.tracestate.as_deref(), Some("congo=t61rcWkgMzE"));
        assert!(ctx.sampled());
        assert_eq!(parse_traceparent(&ctx.to_traceparent()).map(|c| c.trace_id), Some(ctx.trace_id.clone()));
    }

    #[test]
    fn invalid_traceparents_are_ignored() {
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad:?}");
        }
        let started = TraceContext::continue_or_start(Some("garbage"), Some("a=b"));
        assert!(is_trace_id(&started.trace_id));
        assert_eq!(started.tracestate, None);
    }

    #[test]
    fn a_future_version_is_read_by_its_first_fields() {
        let ctx = parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever").unwrap();
        assert_eq!(ctx.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    }
}
