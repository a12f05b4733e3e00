//! The hardened SOAP envelope parser: quick-xml pull events into a small element tree, with
//! our own limits checked while reading (size, depth, attributes, names, text, elements), no
//! DTDs, no processing instructions, no entities beyond the five predefined ones, and a
//! truncated document refused (quick-xml reaches EOF on it without an error).

use quick_xml::NsReader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

pub const SOAP11_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const SOAP12_NS: &str = "http://www.w3.org/2003/05/soap-envelope";

/// The SOAP version of an envelope, which is also the version of its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    Soap11,
    Soap12,
}

impl Version {
    pub fn namespace(self) -> &'static str {
        match self {
            Version::Soap11 => SOAP11_NS,
            Version::Soap12 => SOAP12_NS,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Version::Soap11 => "text/xml; charset=utf-8",
            Version::Soap12 => "application/soap+xml; charset=utf-8",
        }
    }
}

/// What a parse may hold at most. Every limit is checked while reading, before allocating more.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_depth: usize,
    pub max_attributes: usize,
    pub max_name_len: usize,
    pub max_text_len: usize,
    pub max_elements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 512 * 1024,
            max_depth: 32,
            max_attributes: 32,
            max_name_len: 256,
            max_text_len: 448 * 1024,
            max_elements: 10_000,
        }
    }
}

/// An attribute with its namespace resolved (namespace declarations are not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub ns: Option<String>,
    pub name: String,
    pub value: String,
}

/// An element with its namespace resolved. `text` is the concatenated character data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub ns: Option<String>,
    pub name: String,
    pub attrs: Vec<Attr>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns.as_deref() == Some(ns) && self.name == name
    }

    pub fn attr(&self, ns: Option<&str>, name: &str) -> Option<&str> {
        self.attrs.iter().find(|a| a.ns.as_deref() == ns && a.name == name).map(|a| a.value.as_str())
    }

    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// Canonical bytes of the element (names with namespaces, sorted attributes, escaped text),
    /// so equal requests fingerprint equally whatever their prefixes and whitespace.
    pub fn canonical(&self, out: &mut Vec<u8>) {
        out.push(b'<');
        if let Some(ns) = &self.ns {
            out.extend_from_slice(b"{");
            out.extend_from_slice(ns.as_bytes());
            out.extend_from_slice(b"}");
        }
        out.extend_from_slice(self.name.as_bytes());
        let mut attrs: Vec<&Attr> = self.attrs.iter().collect();
        attrs.sort_by(|a, b| (&a.ns, &a.name).cmp(&(&b.ns, &b.name)));
        for a in attrs {
            out.push(b' ');
            out.extend_from_slice(format!("{{{}}}{}", a.ns.as_deref().unwrap_or(""), a.name).as_bytes());
            out.extend_from_slice(b"=\"");
            out.extend_from_slice(super::writer::escape(&a.value).as_bytes());
            out.push(b'"');
        }
        out.push(b'>');
        if self.children.is_empty() {
            out.extend_from_slice(super::writer::escape(&self.text).as_bytes());
        }
        for c in &self.children {
            c.canonical(out);
        }
        out.extend_from_slice(b"</>");
    }
}

/// A parsed envelope: its version, its header blocks and the one element inside Body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub version: Version,
    pub headers: Vec<Element>,
    pub body: Element,
}

/// Why an envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The root is not a SOAP 1.1 or 1.2 Envelope.
    VersionMismatch { found: String },
    /// Not acceptable XML or not a well-formed envelope; `issue` is a stable detail code.
    Invalid { version: Option<Version>, issue: &'static str, message: String },
    /// Larger than the envelope limit.
    TooLarge,
}

impl ParseError {
    fn invalid(version: Option<Version>, issue: &'static str, message: impl Into<String>) -> Self {
        ParseError::Invalid { version, issue, message: message.into() }
    }

    /// The version to answer in, when the root element told it before the failure.
    pub fn version(&self) -> Option<Version> {
        match self {
            ParseError::Invalid { version, .. } => *version,
            _ => None,
        }
    }
}

/// Parses and checks a SOAP envelope with the default limits.
pub fn parse(bytes: &[u8]) -> Result<Envelope, ParseError> {
    parse_with(bytes, &Limits::default())
}

/// Parses and checks a SOAP envelope.
pub fn parse_with(bytes: &[u8], limits: &Limits) -> Result<Envelope, ParseError> {
    if bytes.len() > limits.max_bytes {
        return Err(ParseError::TooLarge);
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ParseError::invalid(None, "invalid_utf8", "the envelope is not valid UTF-8"))?;
    let root = Tree::new(limits).read(text.strip_prefix('\u{feff}').unwrap_or(text))?;
    envelope(root)
}

struct Tree<'l> {
    limits: &'l Limits,
    stack: Vec<Element>,
    elements: usize,
    version: Option<Version>,
}

impl<'l> Tree<'l> {
    fn new(limits: &'l Limits) -> Self {
        Self { limits, stack: Vec::new(), elements: 0, version: None }
    }

    fn bad(&self, issue: &'static str, message: impl Into<String>) -> ParseError {
        ParseError::invalid(self.version, issue, message)
    }

    fn read(mut self, text: &str) -> Result<Element, ParseError> {
        let mut reader = NsReader::from_str(text);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.check_comments = true;
        config.expand_empty_elements = false;
        config.allow_dangling_amp = false;
        reader.resolver_mut().set_max_declarations_per_element(self.limits.max_attributes);
        let mut root: Option<Element> = None;
        let mut first = true;
        loop {
            let event = reader.read_resolved_event();
            let (ns, event) = match event {
                Ok((ns, event)) => (resolved(&ns), event),
                Err(e) => return Err(self.bad("malformed_xml", format!("the envelope is not well-formed XML: {e}"))),
            };
            let at_start = std::mem::replace(&mut first, false);
            match event {
                Event::Decl(decl) => {
                    if !at_start {
                        return Err(self.bad("malformed_xml", "an XML declaration may only open the document"));
                    }
                    if let Some(enc) = decl.encoding() {
                        let enc = enc.map_err(|_| self.bad("malformed_xml", "unreadable XML declaration"))?;
                        if !enc.eq_ignore_ascii_case(b"utf-8") {
                            return Err(self.bad("unsupported_encoding", "only UTF-8 envelopes are accepted"));
                        }
                    }
                }
                Event::DocType(_) => return Err(self.bad("dtd_not_allowed", "DOCTYPE declarations are not allowed")),
                Event::PI(_) => {
                    return Err(
                        self.bad("processing_instruction_not_allowed", "processing instructions are not allowed")
                    );
                }
                Event::Comment(_) => {}
                Event::Start(start) | Event::Empty(start) if root.is_some() => {
                    let _ = start;
                    return Err(self.bad("malformed_xml", "content after the root element"));
                }
                Event::Start(start) => {
                    let element = self.open(&reader, ns, &start)?;
                    self.stack.push(element);
                }
                Event::Empty(start) => {
                    let element = self.open(&reader, ns, &start)?;
                    if let Some(done) = self.close(element) {
                        root = Some(done);
                    }
                }
                Event::End(_) => {
                    let element = self.stack.pop().ok_or_else(|| self.bad("malformed_xml", "unmatched end tag"))?;
                    if let Some(done) = self.close(element) {
                        root = Some(done);
                    }
                }
                Event::Text(t) => {
                    let s = t.xml10_content().map_err(|_| self.bad("invalid_utf8", "undecodable text"))?;
                    self.text(&s)?;
                }
                Event::CData(t) => {
                    let s = t.xml10_content().map_err(|_| self.bad("invalid_utf8", "undecodable text"))?;
                    self.text(&s)?;
                }
                Event::GeneralRef(r) => {
                    let ch = match r.resolve_char_ref() {
                        Ok(Some(c)) if is_xml_char(c) => c.to_string(),
                        Ok(Some(_)) | Err(_) => return Err(self.bad("malformed_xml", "invalid character reference")),
                        Ok(None) => {
                            let name = r.decode().map_err(|_| self.bad("malformed_xml", "invalid entity reference"))?;
                            resolve_predefined_entity(&name)
                                .ok_or_else(|| {
                                    self.bad("entity_not_allowed", "only the five predefined XML entities are allowed")
                                })?
                                .to_string()
                        }
                    };
                    self.text(&ch)?;
                }
                Event::Eof => break,
            }
        }
        if !self.stack.is_empty() {
            return Err(self.bad("truncated", "the envelope ends before its elements are closed"));
        }
        root.ok_or_else(|| self.bad("truncated", "the request holds no XML element"))
    }

    fn open(
        &mut self,
        reader: &NsReader<&[u8]>,
        ns: Option<String>,
        start: &BytesStart<'_>,
    ) -> Result<Element, ParseError> {
        if self.stack.len() >= self.limits.max_depth {
            return Err(self.bad("too_deep", format!("elements nest deeper than {}", self.limits.max_depth)));
        }
        self.elements += 1;
        if self.elements > self.limits.max_elements {
            return Err(self.bad("too_many_elements", format!("more than {} elements", self.limits.max_elements)));
        }
        let name = self.name(start.local_name().as_ref())?;
        let mut attrs = Vec::new();
        let mut count = 0;
        for attr in start.attributes().with_checks(true) {
            count += 1;
            if count > self.limits.max_attributes {
                return Err(self.bad(
                    "too_many_attributes",
                    format!("an element has more than {} attributes", self.limits.max_attributes),
                ));
            }
            let attr = attr.map_err(|e| self.bad("malformed_xml", format!("bad attribute: {e}")))?;
            let key = attr.key;
            if key.as_ref() == b"xmlns" || key.as_ref().starts_with(b"xmlns:") {
                self.name(key.as_ref())?;
                continue;
            }
            let (attr_ns, local) = reader.resolver().resolve_attribute(key);
            let attr_ns = match attr_ns {
                ResolveResult::Unknown(_) => return Err(self.bad("malformed_xml", "undeclared namespace prefix")),
                other => resolved(&other),
            };
            let local = self.name(local.as_ref())?;
            let value = attr.normalized_value(quick_xml::XmlVersion::Implicit1_0).map_err(|_| {
                self.bad("entity_not_allowed", "only the five predefined XML entities are allowed in attributes")
            })?;
            if value.len() > self.limits.max_text_len {
                return Err(self.bad("text_too_long", "an attribute value is too long"));
            }
            attrs.push(Attr { ns: attr_ns, name: local, value: value.into_owned() });
        }
        if self.stack.is_empty() && self.version.is_none() && name == "Envelope" {
            self.version = match ns.as_deref() {
                Some(SOAP11_NS) => Some(Version::Soap11),
                Some(SOAP12_NS) => Some(Version::Soap12),
                _ => None,
            };
        }
        if ns.is_none() && start.name().prefix().is_some() {
            return Err(self.bad("malformed_xml", "undeclared namespace prefix"));
        }
        Ok(Element { ns, name, attrs, children: Vec::new(), text: String::new() })
    }

    fn name(&self, raw: &[u8]) -> Result<String, ParseError> {
        if raw.len() > self.limits.max_name_len {
            return Err(self.bad("name_too_long", format!("a name is longer than {} bytes", self.limits.max_name_len)));
        }
        std::str::from_utf8(raw).map(str::to_string).map_err(|_| self.bad("invalid_utf8", "undecodable name"))
    }

    /// Attaches a finished element to its parent; returns it when it is the root.
    fn close(&mut self, element: Element) -> Option<Element> {
        match self.stack.last_mut() {
            Some(parent) => {
                parent.children.push(element);
                None
            }
            None => Some(element),
        }
    }

    fn text(&mut self, s: &str) -> Result<(), ParseError> {
        let limit = self.limits.max_text_len;
        match self.stack.last_mut() {
            Some(current) => {
                if current.text.len() + s.len() > limit {
                    return Err(self.bad("text_too_long", format!("a text node is longer than {limit} bytes")));
                }
                current.text.push_str(s);
                Ok(())
            }
            None if s.trim().is_empty() => Ok(()),
            None => Err(self.bad("malformed_xml", "text outside the root element")),
        }
    }
}

fn resolved(ns: &ResolveResult<'_>) -> Option<String> {
    match ns {
        ResolveResult::Bound(ns) => std::str::from_utf8(ns.as_ref()).ok().map(str::to_string),
        _ => None,
    }
}

/// XML 1.0 `Char`.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Checks the envelope's structure: `Envelope` > optional `Header` > `Body` with one element.
fn envelope(root: Element) -> Result<Envelope, ParseError> {
    let version = match (root.name.as_str(), root.ns.as_deref()) {
        ("Envelope", Some(SOAP11_NS)) => Version::Soap11,
        ("Envelope", Some(SOAP12_NS)) => Version::Soap12,
        _ => {
            let found = match &root.ns {
                Some(ns) => format!("{{{ns}}}{}", root.name),
                None => root.name.clone(),
            };
            return Err(ParseError::VersionMismatch { found });
        }
    };
    let env_ns = version.namespace();
    let bad = |issue, message: &str| ParseError::invalid(Some(version), issue, message);
    if !root.text.trim().is_empty() && root.children.is_empty() {
        return Err(bad("invalid_envelope", "the Envelope holds text"));
    }
    let mut children = root.children.into_iter();
    let mut next = children.next();
    let mut headers = Vec::new();
    if let Some(h) = next.take_if(|e| e.is(env_ns, "Header")) {
        headers = h.children;
        next = children.next();
    }
    let body =
        next.filter(|e| e.is(env_ns, "Body")).ok_or_else(|| bad("invalid_envelope", "the envelope has no Body"))?;
    if children.next().is_some() {
        return Err(bad("invalid_envelope", "nothing may follow the Body"));
    }
    let mut payload = body.children.into_iter();
    let first = payload.next().ok_or_else(|| bad("empty_body", "the Body holds no operation element"))?;
    if payload.next().is_some() {
        return Err(bad("invalid_body", "the Body must hold exactly one operation element"));
    }
    Ok(Envelope { version, headers, body: first })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(ns: &str, body: &str) -> String {
        format!(r#"<?xml version="1.0"?><e:Envelope xmlns:e="{ns}"><e:Body>{body}</e:Body></e:Envelope>"#)
    }

    fn issue(bytes: &[u8]) -> &'static str {
        match parse(bytes) {
            Err(ParseError::Invalid { issue, .. }) => issue,
            other => panic!("expected an invalid envelope, got {other:?}"),
        }
    }

    #[test]
    fn a_well_formed_envelope_yields_its_operation_element() {
        let e = parse(env(SOAP12_NS, r#"<p:GetPost xmlns:p="urn:x"><p:id>a&amp;b&#33;</p:id></p:GetPost>"#).as_bytes())
            .unwrap();
        assert_eq!(e.version, Version::Soap12);
        assert!(e.body.is("urn:x", "GetPost"));
        assert_eq!(e.body.children[0].text, "a&b!");
    }

    #[test]
    fn hostile_documents_are_refused_with_a_reason() {
        let dtd = r#"<!DOCTYPE x [<!ENTITY a "b">]><x/>"#;
        assert_eq!(issue(dtd.as_bytes()), "dtd_not_allowed");
        assert_eq!(issue(env(SOAP11_NS, "<x>&a;</x>").as_bytes()), "entity_not_allowed");
        assert_eq!(issue(env(SOAP11_NS, "<?php x?><x/>").as_bytes()), "processing_instruction_not_allowed");
        let full = env(SOAP11_NS, "<x/>");
        assert_eq!(issue(&full.as_bytes()[..full.len() - "</e:Envelope>".len()]), "truncated");
        assert_eq!(issue(b"\xff\xfe<x/>"), "invalid_utf8");
        assert_eq!(issue(env(SOAP11_NS, &format!("{}{}", "<a>".repeat(40), "</a>".repeat(40))).as_bytes()), "too_deep");
        assert_eq!(parse(&vec![b' '; 600 * 1024]), Err(ParseError::TooLarge));
    }

    #[test]
    fn a_foreign_root_is_a_version_mismatch() {
        let r = parse(br#"<Envelope xmlns="urn:other"><Body/></Envelope>"#);
        assert!(matches!(r, Err(ParseError::VersionMismatch { .. })));
    }
}
