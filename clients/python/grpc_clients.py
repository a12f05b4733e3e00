"""Python grpcio against a live Polyport server (issue 5, item 6).

Generates stubs from proto/ with grpc_tools.protoc into a scratch directory (never committed),
then over plaintext HTTP/2 to the shared port: register + login, post CRUD, ListPosts (server
stream), ImportPosts (client stream), EventService/Live (bidi), rich error details
(google.rpc.ErrorInfo / BadRequest / RetryInfo via grpcio-status) and grpc.health.v1.

Usage: python grpc_clients.py 127.0.0.1:PORT --stubs .build/grpc/py
"""

import argparse
import glob
import os
import queue
import sys
import uuid

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from google.rpc import error_details_pb2


def generate_stubs(out_dir):
    from grpc_tools import protoc
    import grpc_tools

    os.makedirs(out_dir, exist_ok=True)
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    protos = sorted(glob.glob("proto/polyport/v1/*.proto"))
    rc = protoc.main(["protoc", "-Iproto", f"-I{well_known}", f"--python_out={out_dir}",
                      f"--grpc_python_out={out_dir}", *protos])
    if rc != 0:
        sys.exit(f"protoc failed ({rc})")
    sys.path.insert(0, out_dir)


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok  {what}")


def rich(err):
    """(ErrorInfo, BadRequest|None, RetryInfo|None) from a failed call's status details."""
    status = rpc_status.from_call(err)
    info = bad = retry = None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
    return info, bad, retry


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("--stubs", default=".build/grpc/py")
    args = ap.parse_args()
    generate_stubs(args.stubs)
    from polyport.v1 import auth_pb2, auth_pb2_grpc, events_pb2, events_pb2_grpc
    from polyport.v1 import posts_pb2, posts_pb2_grpc, users_pb2, users_pb2_grpc

    channel = grpc.insecure_channel(args.target)
    users = users_pb2_grpc.UserServiceStub(channel)
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    posts = posts_pb2_grpc.PostServiceStub(channel)
    events = events_pb2_grpc.EventServiceStub(channel)

    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    check(health.status == health_pb2.HealthCheckResponse.SERVING, "health: SERVING")

    email = f"py-{uuid.uuid4().hex}@example.com"
    me = users.Register(users_pb2.RegisterRequest(email=email, name="Py", password="correct horse battery"))
    check(me.email == email and me.role == "member", "Register returns the user")
    tokens = auth.Login(auth_pb2.LoginRequest(email=email, password="correct horse battery"))
    check(tokens.token_type == "Bearer" and tokens.expires_in > 0, "Login returns a Bearer token")
    md = [("authorization", f"Bearer {tokens.access_token}")]

    post = posts.CreatePost(posts_pb2.CreatePostRequest(title="From Python", body="hi", tags=["py"]),
                            metadata=md + [("idempotency-key", uuid.uuid4().hex)], timeout=5)
    check(post.status == "draft" and post.version == 1, "CreatePost makes a draft")
    got = posts.GetPost(posts_pb2.GetPostRequest(id=post.id), metadata=md, timeout=5)
    check(got.title == "From Python", "GetPost reads it back")
    upd = posts.UpdatePost(posts_pb2.UpdatePostRequest(id=post.id, title="Renamed", expected_version=1),
                           metadata=md, timeout=5)
    check(upd.title == "Renamed" and upd.version == 2, "UpdatePost with expected_version")
    pub = posts.PublishPost(posts_pb2.PublishPostRequest(id=post.id), metadata=md, timeout=5)
    check(pub.status == "published" and pub.HasField("published_at"), "PublishPost")

    try:
        posts.DeletePost(posts_pb2.DeletePostRequest(id=post.id, expected_version=1), metadata=md, timeout=5)
        check(False, "stale DeletePost must fail")
    except grpc.RpcError as err:
        info, bad, _ = rich(err)
        check(err.code() == grpc.StatusCode.ABORTED and info.reason == "CONFLICT"
              and info.domain == "polyport" and info.metadata["request_id"], "version mismatch: ABORTED + ErrorInfo")
    try:
        posts.CreatePost(posts_pb2.CreatePostRequest(title="", tags=["Bad"]), metadata=md, timeout=5)
        check(False, "invalid CreatePost must fail")
    except grpc.RpcError as err:
        info, bad, _ = rich(err)
        fields = [v.field for v in bad.field_violations]
        check(err.code() == grpc.StatusCode.INVALID_ARGUMENT and info.reason == "VALIDATION_FAILED"
              and fields == ["title", "tags[0]"], f"validation: INVALID_ARGUMENT + BadRequest {fields}")

    streamed = [r.post.id for r in posts.ListPosts(posts_pb2.ListPostsRequest(author_id=me.id), metadata=md, timeout=10)]
    check(post.id in streamed, f"ListPosts server stream ({len(streamed)} posts)")

    rows = [posts_pb2.ImportPostsRequest(title=f"row {i}", idempotency_key=f"py-row-{i}-{me.id}") for i in range(3)]
    rows.append(posts_pb2.ImportPostsRequest(title=""))
    summary = posts.ImportPosts(iter(rows), metadata=md, timeout=10)
    check((summary.received, summary.created, summary.failed) == (4, 3, 1)
          and summary.results[3].error.code == "VALIDATION_FAILED", "ImportPosts client stream with per-row errors")
    again = posts.ImportPosts(iter(rows[:3]), metadata=md, timeout=10)
    check(all(r.replayed for r in again.results), "ImportPosts rows are idempotent")

    commands = queue.Queue()
    commands.put(events_pb2.LiveRequest(id="s1", subscribe=events_pb2.LiveSubscribe(
        subscription="mine", topics=[f"users/{me.id}/posts"])))

    def outgoing():
        while True:
            c = commands.get()
            if c is None:
                return
            yield c

    live = events.Live(outgoing(), metadata=md, timeout=20)
    first = next(live)
    check(first.WhichOneof("kind") == "reply" and first.reply.ok and first.reply.id == "s1", "Live: subscribe reply")
    created = posts.CreatePost(posts_pb2.CreatePostRequest(title="live one"), metadata=md, timeout=5)
    ev = next(live)
    check(ev.WhichOneof("kind") == "event" and ev.event.event.type == "post.created"
          and ev.event.event.data["id"] == created.id, "Live: event delivered")
    commands.put(events_pb2.LiveRequest(id="a1", ack=events_pb2.LiveAck(event_id=ev.event.event.id)))
    check(next(live).reply.ok, "Live: ack")
    commands.put(events_pb2.LiveRequest(id="u1", unsubscribe=events_pb2.LiveUnsubscribe(subscription="mine")))
    check(next(live).reply.id == "u1", "Live: unsubscribe reply")
    commands.put(None)
    check(next(live, None) is None, "Live: half-close ends the session")

    try:
        posts.GetPost(posts_pb2.GetPostRequest(id=post.id), metadata=[("authorization", "Bearer nope")], timeout=5)
        check(False, "bad token must fail")
    except grpc.RpcError as err:
        info, _, _ = rich(err)
        check(err.code() == grpc.StatusCode.UNAUTHENTICATED and info.reason == "UNAUTHENTICATED", "UNAUTHENTICATED")
    print("grpcio clients: all checks passed")


if __name__ == "__main__":
    main()
