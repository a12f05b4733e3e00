#!/usr/bin/env python3
"""Third-party WebSocket client against a live Polyport server: Python `websockets` (asyncio API).

    python clients/python/realtime_clients.py http://127.0.0.1:8080

1. Connects to /ws with `Authorization: Bearer <access token>` at the upgrade, subscribes `s1` to
   `posts` and `s2` to `users/<me>/posts`, pings (pong), creates a post with a `request` frame
   (op `createPost`) and publishes it (op `publishPost`): every response arrives and every event
   arrives exactly once on each subscription; an unknown op and an invalid post each answer an
   error frame, and the connection stays usable.
   A foreign `Origin` is refused with 403 before the upgrade.
2. Disconnects, writes more posts through REST while away, reconnects (credentials by an `auth`
   frame this time), subscribes with `after` = the last event id seen: the missed events are
   replayed in order, then live ones follow, with no gap and no duplicate.

Exits non-zero on the first failure.
"""

import asyncio
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

PASSWORD = "correct horse battery staple"
TIMEOUT = float(os.environ.get("CLIENT_TIMEOUT", "10"))


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"  ok: {what}")


def rest(base, method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + "/api/v1" + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raise AssertionError(f"{method} {path} -> HTTP {e.code}: {e.read().decode(errors='replace')}") from None


class Conn:
    """A WebSocket connection that keeps event frames aside while waiting for replies."""

    def __init__(self, ws):
        self.ws = ws
        self.events = []
        self.others = []

    async def send(self, frame):
        await self.ws.send(json.dumps(frame))

    async def _next(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise asyncio.TimeoutError
        raw = await asyncio.wait_for(self.ws.recv(), left)
        check_text = isinstance(raw, str)
        if not check_text:
            raise AssertionError(f"binary frame from the server: {raw!r}")
        frame = json.loads(raw)
        if frame.get("type") == "event":
            self.events.append(frame)
        else:
            self.others.append(frame)
        return frame

    async def reply(self, pred, what, timeout=TIMEOUT):
        """Returns the first non-event frame matching pred (frames seen earlier included)."""
        deadline = time.monotonic() + timeout
        for i, f in enumerate(self.others):
            if pred(f):
                return self.others.pop(i)
        try:
            while True:
                f = await self._next(deadline)
                if f.get("type") != "event" and pred(f):
                    self.others.remove(f)
                    return f
        except asyncio.TimeoutError:
            raise AssertionError(f"timed out waiting for {what}; other frames: {self.others[-5:]}") from None

    async def wait_events(self, pred, count, what, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        try:
            while sum(1 for e in self.events if pred(e)) < count:
                await self._next(deadline)
        except asyncio.TimeoutError:
            got = [(e.get("subscription"), e.get("event_type"), e.get("event_id")) for e in self.events]
            raise AssertionError(f"timed out waiting for {what}; events so far: {got}") from None
        return [e for e in self.events if pred(e)]

    async def quiet(self, seconds):
        """Collects whatever else arrives within `seconds` (late duplicates would show up here)."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                await self._next(deadline)
        except asyncio.TimeoutError:
            pass

    async def request(self, rid, op, params, **extra):
        await self.send({"type": "request", "id": rid, "op": op, "params": params, **extra})
        return await self.reply(lambda f: f.get("id") == rid, f"the reply to request {rid} ({op})")


def ws_url(base):
    return base.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/ws"


def check_event(e):
    for k in ("subscription", "event_id", "event_type", "topic", "occurred_at", "data"):
        if k not in e:
            raise AssertionError(f"event frame without {k}: {e}")


async def main(base):
    email = f"ws-{uuid.uuid4().hex[:12]}@example.com"
    me = rest(base, "POST", "/users", {"email": email, "name": "Python websockets", "password": PASSWORD})
    token = rest(base, "POST", "/auth/login", {"email": email, "password": PASSWORD})["access_token"]
    uid = me["id"]
    my_topic = f"users/{uid}/posts"

    print("WebSocket (websockets): Origin check")
    try:
        async with connect(ws_url(base), origin="http://evil.example", open_timeout=10):
            raise AssertionError("an upgrade from a foreign Origin was accepted")
    except InvalidStatus as e:
        check(e.response.status_code == 403, f"foreign Origin refused with HTTP 403 before the upgrade (got {e.response.status_code})")

    print("WebSocket (websockets): Authorization header, subscribe, request/response, events, ping, errors")
    async with connect(ws_url(base), additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=10) as ws:
        c = Conn(ws)
        await c.send({"type": "subscribe", "id": "s1", "topics": ["posts"]})
        r = await c.reply(lambda f: f.get("id") == "s1", "subscribe s1 response")
        check(r["type"] == "response" and r["data"].get("subscribed") == ["posts"], f"s1 subscribed to posts: {r}")
        await c.send({"type": "subscribe", "id": "s2", "topics": [my_topic]})
        r = await c.reply(lambda f: f.get("id") == "s2", "subscribe s2 response")
        check(r["type"] == "response" and r["data"].get("subscribed") == [my_topic], f"s2 subscribed to {my_topic}")

        await c.send({"type": "ping"})
        await c.reply(lambda f: f.get("type") == "pong", "pong")
        check(True, "ping answered with pong")

        r = await c.request("r1", "createPost", {"title": "Hello over WebSocket", "body": "from websockets", "tags": ["ws"]})
        check(r["type"] == "response", f"createPost answered a response frame: {str(r)[:200]}")
        post = r["data"]
        check(post.get("title") == "Hello over WebSocket" and post.get("status") == "draft", "response data is the REST post")
        check(post.get("author_id") == uid, "post authored by the connection's user")
        pid = post["id"]

        r = await c.request("r2", "publishPost", {"id": pid})
        check(r["type"] == "response" and r["data"].get("status") == "published", "publishPost answered the published post")

        def about(e, t):
            return e.get("event_type") == t and e.get("data", {}).get("id") == pid

        for sub in ("s1", "s2"):
            got = await c.wait_events(lambda e, s=sub: e["subscription"] == s and about(e, "post.published"), 1, f"post.published on {sub}")
            check(len(got) == 1, f"{sub}: post.published event for the new post")
            got = await c.wait_events(lambda e, s=sub: e["subscription"] == s and about(e, "post.created"), 1, f"post.created on {sub}")
            check(len(got) == 1 and got[0]["data"]["status"] == "draft", f"{sub}: post.created (draft, visible to its author)")

        r = await c.request("r3", "noSuchOperation", {})
        check(r["type"] == "error" and r.get("code") == "INVALID_REQUEST", f"unknown op -> error INVALID_REQUEST: {r}")
        check(isinstance(r.get("message"), str) and isinstance(r.get("details", []), list), "error frame carries message and details")
        r = await c.request("r4", "createPost", {"title": "", "body": "", "tags": []})
        check(r["type"] == "error" and r.get("code") == "VALIDATION_FAILED", f"empty title -> error VALIDATION_FAILED: {r.get('code')}")
        check(any(d.get("field") == "title" for d in r.get("details", [])), "VALIDATION_FAILED names the field title")
        await c.send({"type": "no such frame"})
        r = await c.reply(lambda f: f.get("type") == "error", "error for a malformed frame")
        check(r.get("code") == "INVALID_REQUEST", "malformed frame -> error INVALID_REQUEST")
        await c.send({"type": "ping"})
        await c.reply(lambda f: f.get("type") == "pong", "pong after the errors")
        check(True, "connection still usable after error frames")

        await c.quiet(0.5)
        for e in c.events:
            check_event(e)
        for sub in ("s1", "s2"):
            # s1 (`posts`) may also carry other writers' published posts: keep ours.
            ids = [e["event_id"] for e in c.events if e["subscription"] == sub and e["data"].get("author_id") == uid]
            check(ids == sorted(ids) and len(ids) == len(set(ids)), f"{sub}: event ids increase, no duplicate ({ids})")
            check(len(ids) == 2, f"{sub}: exactly the 2 events of this connection's writes")
        last_id = max(e["event_id"] for e in c.events if e["subscription"] == "s2")

    print(f"WebSocket (websockets): disconnected after event {last_id}; writing through REST while away")
    expected = []
    for i in range(2):
        p = rest(base, "POST", "/posts", {"title": f"while away {i}", "body": "", "tags": []}, token)
        expected.append(("post.created", p["id"]))
        rest(base, "POST", f"/posts/{p['id']}/publish", None, token)
        expected.append(("post.published", p["id"]))
    rest(base, "PATCH", f"/posts/{pid}", {"title": "edited while away"}, token)
    expected.append(("post.updated", pid))

    print("WebSocket (websockets): reconnect, `auth` frame, subscribe with `after`")
    async with connect(ws_url(base), open_timeout=10) as ws:
        c = Conn(ws)
        await c.send({"type": "auth", "token": token, "id": "a1"})
        r = await c.reply(lambda f: f.get("id") == "a1", "auth response")
        check(r["type"] == "response" and r["data"].get("user_id") == uid, "auth frame accepted for the same user")
        await c.send({"type": "subscribe", "id": "s3", "topics": [my_topic], "after": last_id})
        r = await c.reply(lambda f: f.get("id") == "s3", "subscribe s3 response")
        check(r["type"] == "response", f"resumed subscription accepted: {r}")
        await c.wait_events(lambda e: e["subscription"] == "s3", len(expected), f"{len(expected)} replayed events")
        r = await c.request("r5", "deletePost", {"id": pid})
        check(r["type"] == "response", "deletePost answered")
        expected.append(("post.deleted", pid))
        await c.wait_events(lambda e: e["subscription"] == "s3", len(expected), "the live event after the replay")
        await c.quiet(0.5)
        for e in c.events:
            check_event(e)
        got = [(e["event_type"], e["data"].get("id")) for e in c.events if e["subscription"] == "s3"]
        ids = [e["event_id"] for e in c.events if e["subscription"] == "s3"]
        check(all(i > last_id for i in ids), f"every resumed event id is after {last_id}")
        check(ids == sorted(ids) and len(set(ids)) == len(ids), "resumed event ids increase, no duplicate")
        check(got == expected, f"replay + live match the writes exactly (no gap, no duplicate):\n      got      {got}\n      expected {expected}")

    print("realtime_clients.py: all checks passed")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    try:
        asyncio.run(asyncio.wait_for(main(sys.argv[1].rstrip("/")), 120))
    except (AssertionError, OSError, asyncio.TimeoutError, Exception) as e:  # noqa: BLE001
        print(f"FAIL: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
