#!/usr/bin/env python3
"""Real SOAP clients against a live Polyport server: zeep (SOAP 1.1 and 1.2 bindings) and
suds-community load the served WSDL and call Login, CreatePost, GetPost and ListPosts with
WS-Security UsernameTokens (PasswordText and PasswordDigest), read a fault's detail, and every
response payload seen is validated with `xmllint --schema` against the XSD inside the WSDL.

    python clients/python/soap_clients.py http://127.0.0.1:8080 [--out DIR]

Exits non-zero on the first failure.
"""

import argparse
import hashlib
import json
import logging
import os
import subprocess
import sys
import urllib.request
import uuid

from lxml import etree

NS = "urn:polyport:v1"
XS = "http://www.w3.org/2001/XMLSchema"
PASSWORD = "correct horse battery staple"


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"  ok: {what}")


class Capture:
    """A zeep plugin keeping every received envelope for schema validation."""

    def __init__(self):
        self.received = []

    def ingress(self, envelope, http_headers, operation):
        self.received.append(etree.tostring(envelope))
        return envelope, http_headers

    def egress(self, envelope, http_headers, operation, binding_options):
        return envelope, http_headers


def rest(base, method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + "/api/v1" + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def zeep_calls(base, wsdl, email, capture):
    import zeep
    from zeep.wsse.username import UsernameToken

    print("zeep: SOAP 1.1 binding, anonymous Register and Login")
    plain = zeep.Client(wsdl, plugins=[capture])
    v11 = plain.bind("Polyport", "PolyportSoap11")
    user = v11.Register(email=email, name="Zeep", password=PASSWORD)
    check(user.email == email and user.role == "member", "Register returns the new member")
    login = v11.Login(email=email, password=PASSWORD)
    check(login.tokenType == "Bearer" and login.expiresIn > 0 and login.accessToken, "Login returns tokens")

    print("zeep: SOAP 1.1 binding with a PasswordText UsernameToken")
    text = zeep.Client(wsdl, wsse=UsernameToken(email, PASSWORD), plugins=[capture])
    v11 = text.bind("Polyport", "PolyportSoap11")
    post = v11.CreatePost(title="Hello from zeep 1.1", body="SOAP body", tags={"tag": ["zeep", "soap11"]})
    check(post.authorId == user.id and post.status == "draft", "CreatePost (1.1) creates a draft")
    check(list(post.tags.tag) == ["zeep", "soap11"], "tags round-trip")
    got = v11.GetPost(id=post.id)
    check(got.id == post.id and got.title == "Hello from zeep 1.1", "GetPost (1.1) reads it back")

    print("zeep: SOAP 1.2 binding with a PasswordText UsernameToken")
    v12 = text.bind("Polyport", "PolyportSoap12")
    post12 = v12.CreatePost(title="Hello from zeep 1.2", body="SOAP 1.2 body")
    published = v12.PublishPost(id=post12.id)
    check(published.status == "published" and published.publishedAt is not None, "PublishPost (1.2)")
    got = v12.GetPost(id=post12.id)
    check(got.title == "Hello from zeep 1.2", "GetPost (1.2)")
    page = v12.ListPosts(authorId=user.id, limit=1)
    check(len(page.post) == 1 and page.hasMore and page.nextCursor, "ListPosts (1.2) pages with a cursor")
    rest_page = v12.ListPosts(authorId=user.id, limit=1, cursor=page.nextCursor)
    check(len(rest_page.post) == 1 and rest_page.post[0].id != page.post[0].id, "the cursor continues the list")

    print("zeep: PasswordDigest with an API key")
    token = login.accessToken
    key = rest(base, "POST", "/api-keys", {"name": "zeep digest", "scopes": ["posts:read", "posts:write"]}, token)
    shared = hashlib.sha256(key["key"].encode()).hexdigest()
    digest = zeep.Client(wsdl, wsse=UsernameToken(key["id"], shared, use_digest=True), plugins=[capture])
    post_d = digest.bind("Polyport", "PolyportSoap12").CreatePost(title="Digest-authenticated")
    check(post_d.authorId == user.id, "CreatePost with a PasswordDigest token acts as the key's owner")

    print("zeep: a fault's detail")
    try:
        v12.GetPost(id="no-such-post")
        raise AssertionError("GetPost of a missing post must fault")
    except zeep.exceptions.Fault as fault:
        code = fault.detail.find(f"{{{NS}}}Error/{{{NS}}}code")
        request_id = fault.detail.find(f"{{{NS}}}Error/{{{NS}}}requestId")
        check(code is not None and code.text == "NOT_FOUND", "the fault detail carries code NOT_FOUND")
        check(request_id is not None and request_id.text, "the fault detail carries the request id")
    try:
        v11.CreatePost(title="")
        raise AssertionError("an empty title must fault")
    except zeep.exceptions.Fault as fault:
        check(fault.code.endswith("Client"), "SOAP 1.1 validation faults are Client faults")
        issue = fault.detail.find(f"{{{NS}}}Error/{{{NS}}}details/{{{NS}}}field")
        check(issue is not None and issue.text == "title", "the detail names the invalid field")
    return user


def suds_calls(wsdl, email):
    from suds.client import Client
    from suds.wsse import Security, UsernameToken

    print("suds: SOAP 1.1 with a PasswordText UsernameToken")
    logging.getLogger("suds").setLevel(logging.CRITICAL)
    client = Client(wsdl, port="PolyportSoap11", faults=True, cache=None)
    login = client.service.Login(email=email, password=PASSWORD)
    check(login.tokenType == "Bearer", "suds Login")
    security = Security()
    security.tokens.append(UsernameToken(email, PASSWORD))
    client.set_options(wsse=security)
    post = client.service.CreatePost(title="Hello from suds", body="suds body")
    check(post.title == "Hello from suds" and post.status == "draft", "suds CreatePost")
    got = client.service.GetPost(id=post.id)
    check(got.id == post.id, "suds GetPost")
    page = client.service.ListPosts(limit=5)
    check(page.hasMore in (True, False), "suds ListPosts")
    from suds import WebFault

    try:
        client.service.GetPost(id="missing")
        raise AssertionError("suds GetPost of a missing post must fault")
    except WebFault as e:
        check(e.fault.detail.Error.code == "NOT_FOUND", "suds reads the fault detail code")


def validate_with_xmllint(wsdl_text, received, out_dir):
    print(f"xmllint: validating {len(received)} response payloads against the XSD in the WSDL")
    os.makedirs(out_dir, exist_ok=True)
    wsdl = etree.fromstring(wsdl_text)
    schema = wsdl.find(f".//{{{XS}}}schema")
    xsd_path = os.path.join(out_dir, "polyport.xsd")
    with open(xsd_path, "wb") as f:
        f.write(etree.tostring(schema, xml_declaration=True, encoding="utf-8"))
    count = 0
    for i, raw in enumerate(received):
        env = etree.fromstring(raw)
        body = next(c for c in env if etree.QName(c).localname == "Body")
        payloads = list(body)
        fault = payloads and etree.QName(payloads[0]).localname == "Fault"
        if fault:
            payloads = [e for e in payloads[0].iter(f"{{{NS}}}Error")]
        for payload in payloads:
            path = os.path.join(out_dir, f"response-{i}.xml")
            with open(path, "wb") as f:
                f.write(etree.tostring(payload, xml_declaration=True, encoding="utf-8"))
            r = subprocess.run(["xmllint", "--noout", "--schema", xsd_path, path], capture_output=True, text=True)
            if r.returncode != 0:
                raise AssertionError(f"xmllint rejected {path}:\n{r.stderr}")
            count += 1
    check(count >= 10, f"xmllint validated {count} payloads (responses and fault details)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="server base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--out", default=".build/soap", help="where schema and payloads are written")
    args = parser.parse_args()
    wsdl = args.base.rstrip("/") + "/soap?wsdl"
    with urllib.request.urlopen(wsdl, timeout=30) as r:
        wsdl_text = r.read()
    capture = Capture()
    email = f"zeep-{uuid.uuid4().hex[:12]}@example.com"
    zeep_calls(args.base.rstrip("/"), wsdl, email, capture)
    suds_calls(wsdl, email)
    validate_with_xmllint(wsdl_text, capture.received, args.out)
    print("SOAP clients: all checks passed")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report any failure and exit non-zero
        import traceback

        traceback.print_exc()
        print(f"SOAP clients FAILED: {e}", file=sys.stderr)
        sys.exit(1)
