"""A Python gRPC client (grpcio) with stubs generated from proto/ at run time by grpcio-tools.

Registers, logs in, creates a post, reads it, publishes it and receives the post's events from
the EventService/Subscribe server stream. The access token travels in `authorization` metadata.

Run: python clients/examples/python/grpc_example.py 127.0.0.1:8080
"""

import os
import sys
import tempfile
import time

import grpc
import grpc_tools
from grpc_tools import protoc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def generate_stubs():
    """Compiles proto/polyport/v1/*.proto into a scratch directory and puts it on sys.path."""
    out = tempfile.mkdtemp(prefix="polyport-stubs-")
    proto = os.path.join(ROOT, "proto")
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    files = sorted(
        os.path.join(proto, "polyport", "v1", f) for f in os.listdir(os.path.join(proto, "polyport", "v1"))
    )
    args = ["protoc", f"-I{proto}", f"-I{well_known}", f"--python_out={out}", f"--grpc_python_out={out}", *files]
    if protoc.main(args) != 0:
        sys.exit("protoc failed")
    sys.path.insert(0, out)


def main(addr):
    generate_stubs()
    from polyport.v1 import auth_pb2, auth_pb2_grpc, events_pb2, events_pb2_grpc
    from polyport.v1 import posts_pb2, posts_pb2_grpc, users_pb2, users_pb2_grpc

    channel = grpc.insecure_channel(addr)
    users = users_pb2_grpc.UserServiceStub(channel)
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    posts = posts_pb2_grpc.PostServiceStub(channel)
    events = events_pb2_grpc.EventServiceStub(channel)

    email = f"grpc-{time.time_ns()}@example.com"
    password = "correct horse battery"
    me = users.Register(users_pb2.RegisterRequest(email=email, name="Barbara", password=password), timeout=10)
    tokens = auth.Login(auth_pb2.LoginRequest(email=email, password=password), timeout=10)
    metadata = [("authorization", f"Bearer {tokens.access_token}")]
    print(f"registered {me.id}, logged in")

    post = posts.CreatePost(
        posts_pb2.CreatePostRequest(title="Hello from grpcio", body="Stubs from proto/.", tags=["grpc"]),
        metadata=metadata,
        timeout=10,
    )
    read = posts.GetPost(posts_pb2.GetPostRequest(id=post.id), metadata=metadata, timeout=10)
    print(f"created {post.id}: {post.status}; read back {read.title!r}")

    # Errors carry a status code (and google.rpc details in the trailers).
    try:
        posts.GetPost(posts_pb2.GetPostRequest(id=post.id), timeout=10)  # anonymous: a draft is invisible
        sys.exit("an anonymous read of a draft must fail")
    except grpc.RpcError as e:
        print(f"anonymous GetPost of a draft: {e.code().name}")

    # A server stream: this post's events from the start of the log, then live.
    stream = events.Subscribe(
        events_pb2.SubscribeRequest(topics=[f"posts/{post.id}"], after_event_id=0), metadata=metadata, timeout=10
    )
    for event in stream:
        print(f"event {event.id}: {event.type} on {event.topic}")
        if event.type == "post.created":
            posts.PublishPost(posts_pb2.PublishPostRequest(id=post.id), metadata=metadata, timeout=10)
        if event.type == "post.published":
            stream.cancel()
            break
    else:
        sys.exit("the stream ended without post.published")
    print("grpc example: done")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:8080")
