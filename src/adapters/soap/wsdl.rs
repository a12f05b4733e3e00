//! The WSDL 1.1 document (document/literal wrapped, SOAP 1.1 and 1.2 bindings, an inline XSD
//! for every message), generated from the schema tables the adapter itself reads and writes.

use std::fmt::Write;

use super::schema::{self, ComplexType, Field, NS, OPERATIONS, Ty};
use super::writer::escape;

const DOC: &str = "Polyport over SOAP: the same core, rules and error model as every other protocol.
Credentials: a WS-Security UsernameToken header, or an `Authorization: Bearer` / `x-api-key` HTTP header (never both).
- PasswordText: Username is the account email, Password the account password (throttled like a login).
- PasswordDigest: Username is an API key id; Password is Base64(SHA-1(nonce + Created + secret)) where secret is the lowercase hex SHA-256 of the API key, which is what the server stores. That stored hash is therefore password-equivalent for digest auth (the known trade-off of digest schemes; API keys are high-entropy). wsu:Created must be within 5 minutes of the server clock and each Nonce is accepted once.
Idempotency: the optional header element IdempotencyKey (1 to 255 visible ASCII characters) replays the first response of the same caller, operation and request body; the HTTP response then carries `idempotent-replayed: true`.
Faults: Client/Sender or Server/Receiver with the contract's Error (code, message, details, requestId, retryAfter) inside the fault detail. Lists: pass nextCursor back as cursor while hasMore is true.";

fn xsd_type(ty: Ty) -> String {
    match ty {
        Ty::String => "xs:string".into(),
        Ty::Long => "xs:long".into(),
        Ty::Int => "xs:int".into(),
        Ty::Boolean => "xs:boolean".into(),
        Ty::DateTime => "xs:dateTime".into(),
        Ty::Role => "tns:Role".into(),
        Ty::Status => "tns:PostStatus".into(),
        Ty::Tag => "tns:Tag".into(),
        Ty::Complex(c) => format!("tns:{}", c.name),
    }
}

fn sequence(w: &mut String, fields: &[Field], indent: &str) {
    if fields.is_empty() {
        let _ = writeln!(w, "{indent}<xs:sequence/>");
        return;
    }
    let _ = writeln!(w, "{indent}<xs:sequence>");
    for f in fields {
        let min = if f.required { "" } else { r#" minOccurs="0""# };
        let max = if f.many { r#" maxOccurs="unbounded""# } else { "" };
        let _ = writeln!(w, r#"{indent}  <xs:element name="{}" type="{}"{min}{max}/>"#, f.name, xsd_type(f.ty));
    }
    let _ = writeln!(w, "{indent}</xs:sequence>");
}

fn complex_type(w: &mut String, ty: &ComplexType) {
    let _ = writeln!(w, r#"      <xs:complexType name="{}">"#, ty.name);
    let _ =
        writeln!(w, "        <xs:annotation><xs:documentation>{}</xs:documentation></xs:annotation>", escape(ty.doc));
    sequence(w, ty.fields, "        ");
    let _ = writeln!(w, "      </xs:complexType>");
}

fn wrapper(w: &mut String, name: &str, fields: &[Field]) {
    let _ = writeln!(w, r#"      <xs:element name="{name}">"#);
    let _ = writeln!(w, "        <xs:complexType>");
    sequence(w, fields, "          ");
    let _ = writeln!(w, "        </xs:complexType>");
    let _ = writeln!(w, "      </xs:element>");
}

fn enumeration(w: &mut String, name: &str, values: &[&str]) {
    let _ = writeln!(w, r#"      <xs:simpleType name="{name}">"#);
    let _ = writeln!(w, r#"        <xs:restriction base="xs:string">"#);
    for v in values {
        let _ = writeln!(w, r#"          <xs:enumeration value="{v}"/>"#);
    }
    let _ = writeln!(w, "        </xs:restriction>");
    let _ = writeln!(w, "      </xs:simpleType>");
}

/// The XSD of every element and type (also what `xmllint --schema` validates responses with).
pub fn xsd() -> String {
    let mut w = String::new();
    let _ = writeln!(
        w,
        r#"    <xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:tns="{NS}" targetNamespace="{NS}" elementFormDefault="qualified">"#
    );
    enumeration(&mut w, "Role", &["admin", "editor", "member"]);
    enumeration(&mut w, "PostStatus", &["draft", "published"]);
    let _ = writeln!(w, r#"      <xs:simpleType name="Tag">"#);
    let _ = writeln!(
        w,
        r#"        <xs:restriction base="xs:string"><xs:pattern value="[a-z0-9\-]{{1,32}}"/></xs:restriction>"#
    );
    let _ = writeln!(w, "      </xs:simpleType>");
    for ty in schema::TYPES {
        complex_type(&mut w, ty);
    }
    for op in &OPERATIONS {
        wrapper(&mut w, op.name, op.input);
        wrapper(&mut w, op.response, op.output);
    }
    let _ = writeln!(w, r#"      <xs:element name="Error" type="tns:Error"/>"#);
    let _ = writeln!(w, r#"      <xs:element name="{}">"#, schema::IDEMPOTENCY_KEY);
    let _ = writeln!(
        w,
        r#"        <xs:simpleType><xs:restriction base="xs:string"><xs:minLength value="1"/><xs:maxLength value="255"/></xs:restriction></xs:simpleType>"#
    );
    let _ = writeln!(w, "      </xs:element>");
    let _ = writeln!(w, "    </xs:schema>");
    w
}

fn binding(w: &mut String, name: &str, prefix: &str) {
    let _ = writeln!(w, r#"  <wsdl:binding name="{name}" type="tns:PolyportPortType">"#);
    let _ = writeln!(w, r#"    <{prefix}:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>"#);
    for op in &OPERATIONS {
        let action = schema::action(op);
        let required = if prefix == "soap12" { r#" soapActionRequired="false""# } else { "" };
        let _ = writeln!(w, r#"    <wsdl:operation name="{}">"#, op.name);
        let _ = writeln!(w, r#"      <{prefix}:operation soapAction="{action}"{required} style="document"/>"#);
        let _ = writeln!(w, "      <wsdl:input>");
        let _ = writeln!(w, r#"        <{prefix}:body use="literal"/>"#);
        let _ =
            writeln!(w, r#"        <{prefix}:header message="tns:IdempotencyKeyHeader" part="key" use="literal"/>"#);
        let _ = writeln!(w, "      </wsdl:input>");
        let _ = writeln!(w, r#"      <wsdl:output><{prefix}:body use="literal"/></wsdl:output>"#);
        let _ =
            writeln!(w, r#"      <wsdl:fault name="Error"><{prefix}:fault name="Error" use="literal"/></wsdl:fault>"#);
        let _ = writeln!(w, "    </wsdl:operation>");
    }
    let _ = writeln!(w, "  </wsdl:binding>");
}

/// The WSDL with `address` (e.g. `http://host:port/soap`) as the service location.
pub fn document(address: &str) -> String {
    let address = escape(address);
    let mut w = String::with_capacity(32 * 1024);
    w.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    let _ = writeln!(
        w,
        r#"<wsdl:definitions name="Polyport" targetNamespace="{NS}" xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:tns="{NS}">"#
    );
    let _ = writeln!(w, "  <wsdl:documentation>{}</wsdl:documentation>", escape(DOC));
    let _ = writeln!(w, "  <wsdl:types>");
    w.push_str(&xsd());
    let _ = writeln!(w, "  </wsdl:types>");
    for op in &OPERATIONS {
        for (message, element) in [(format!("{}Request", op.name), op.name), (op.response.to_string(), op.response)] {
            let _ = writeln!(
                w,
                r#"  <wsdl:message name="{message}"><wsdl:part name="parameters" element="tns:{element}"/></wsdl:message>"#
            );
        }
    }
    let _ = writeln!(
        w,
        r#"  <wsdl:message name="ErrorFault"><wsdl:part name="error" element="tns:Error"/></wsdl:message>"#
    );
    let _ = writeln!(
        w,
        r#"  <wsdl:message name="IdempotencyKeyHeader"><wsdl:part name="key" element="tns:{}"/></wsdl:message>"#,
        schema::IDEMPOTENCY_KEY
    );
    let _ = writeln!(w, r#"  <wsdl:portType name="PolyportPortType">"#);
    for op in &OPERATIONS {
        let _ = writeln!(w, r#"    <wsdl:operation name="{}">"#, op.name);
        let _ = writeln!(w, "      <wsdl:documentation>{}</wsdl:documentation>", escape(op.doc));
        let _ = writeln!(w, r#"      <wsdl:input message="tns:{}Request"/>"#, op.name);
        let _ = writeln!(w, r#"      <wsdl:output message="tns:{}"/>"#, op.response);
        let _ = writeln!(w, r#"      <wsdl:fault name="Error" message="tns:ErrorFault"/>"#);
        let _ = writeln!(w, "    </wsdl:operation>");
    }
    let _ = writeln!(w, "  </wsdl:portType>");
    binding(&mut w, "PolyportSoap11", "soap");
    binding(&mut w, "PolyportSoap12", "soap12");
    let _ = writeln!(w, r#"  <wsdl:service name="Polyport">"#);
    let _ = writeln!(
        w,
        r#"    <wsdl:port name="PolyportSoap11" binding="tns:PolyportSoap11"><soap:address location="{address}"/></wsdl:port>"#
    );
    let _ = writeln!(
        w,
        r#"    <wsdl:port name="PolyportSoap12" binding="tns:PolyportSoap12"><soap12:address location="{address}"/></wsdl:port>"#
    );
    let _ = writeln!(w, "  </wsdl:service>");
    w.push_str("</wsdl:definitions>\n");
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wsdl_is_well_formed_and_declares_every_operation_in_both_bindings() {
        let doc = document("http://localhost:8080/soap");
        let mut reader = quick_xml::Reader::from_str(&doc);
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("ill-formed WSDL: {e}"),
            }
        }
        for op in &OPERATIONS {
            assert_eq!(doc.matches(&format!(r#"<wsdl:operation name="{}">"#, op.name)).count(), 3, "{}", op.name);
        }
    }
}
