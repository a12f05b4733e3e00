"""A Python SOAP client (zeep) reading the served WSDL.

Registers and logs in anonymously, then calls as that user with a WS-Security UsernameToken:
creates a post, reads it, publishes it, lists posts, and reads a fault's detail.

Run: python clients/examples/python/soap_example.py http://127.0.0.1:8080
"""

import sys
import time

import zeep
from zeep.wsse.username import UsernameToken

NS = "urn:polyport:v1"


def main(base):
    wsdl = f"{base.rstrip('/')}/soap?wsdl"
    email = f"soap-{time.time_ns()}@example.com"
    password = "correct horse battery"

    # The WSDL has a SOAP 1.1 and a SOAP 1.2 binding; this uses 1.1.
    anonymous = zeep.Client(wsdl).bind("Polyport", "PolyportSoap11")
    me = anonymous.Register(email=email, name="Ada", password=password)
    login = anonymous.Login(email=email, password=password)
    print(f"registered {me.id} ({me.role}); Login also answers a {login.tokenType} token for HTTP headers")

    # Calls as the user: a WS-Security UsernameToken with the email and password.
    client = zeep.Client(wsdl, wsse=UsernameToken(email, password)).bind("Polyport", "PolyportSoap11")
    post = client.CreatePost(title="Hello from zeep", body="SOAP 1.1, document/literal.", tags={"tag": ["soap"]})
    read = client.GetPost(id=post.id)
    print(f"created {post.id}: {post.status}; read back {read.title!r} with tags {list(read.tags.tag)}")
    published = client.PublishPost(id=post.id)
    print(f"published: {published.status} v{published.version}")
    page = client.ListPosts(authorId=me.id, limit=5)
    print(f"ListPosts: {len(page.post)} of my posts, hasMore={page.hasMore}")

    # Faults carry our code, the field details and the request id in <detail>.
    try:
        client.CreatePost(title="")
        sys.exit("an empty title must fault")
    except zeep.exceptions.Fault as fault:
        code = fault.detail.find(f"{{{NS}}}Error/{{{NS}}}code")
        field = fault.detail.find(f"{{{NS}}}Error/{{{NS}}}details/{{{NS}}}field")
        print(f"empty title: {fault.code} fault, code {code.text}, field {field.text}")
    print("soap example: done")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080")
