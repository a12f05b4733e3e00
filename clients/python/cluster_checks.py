"""What several instances behind HAProxy must do as one (run by .ci/cluster.sh; stdlib only).

    python3 clients/python/cluster_checks.py http://FRONT s1=PID s2=PID s3=PID

1. A flow alternating instances on every request (create, get, patch, publish, patch, delete,
   20 rounds): no write fails, the balancer really alternates (X-Served-By), and a read on
   another instance after a write trails it by at most the documented bound (p99 50 ms).
2. The request budget is shared: consecutive anonymous requests served by different instances
   see RateLimit-Remaining fall by exactly one each time. The failed-login budget is shared: after 10 bad logins spread over the instances, the 11th
   attempt is refused (429) whichever instance gets it, even with the right password.
3. An SSE stream whose instance is killed (kill -9) reconnects through the balancer with
   Last-Event-ID and misses none of the events written meanwhile.
4. SIGTERM of one instance under load fails no request (readiness drops first, the balancer
   takes it out, in-flight requests finish).
"""

import http.client
import json
import os
import signal
import sys
import threading
import time
import urllib.parse
import uuid

BASE = sys.argv[1].rstrip("/")
PIDS = dict(arg.split("=", 1) for arg in sys.argv[2:])
HOST = urllib.parse.urlparse(BASE).netloc
PASSWORD = "correct horse battery staple"


def call(method, path, body=None, token=None, headers=None, conn=None):
    own = conn is None
    conn = conn or http.client.HTTPConnection(HOST, timeout=10)
    h = {"accept": "application/json", **(headers or {})}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["content-type"] = "application/json"
    if token:
        h["authorization"] = f"Bearer {token}"
    conn.request(method, "/api/v1" + path, body=data, headers=h)
    r = conn.getresponse()
    raw = r.read()
    if own:
        conn.close()
    return r.status, (json.loads(raw) if raw else None), r.getheader("x-served-by")


def expect(status, want, what, body=None):
    if status != want:
        sys.exit(f"FAIL {what}: HTTP {status} (wanted {want}): {body}")


def member(name):
    email = f"{name}-{uuid.uuid4().hex[:12]}@example.com"
    s, b, _ = call("POST", "/users", {"email": email, "name": name, "password": PASSWORD})
    expect(s, 201, "register", b)
    s, b, _ = call("POST", "/auth/login", {"email": email, "password": PASSWORD})
    expect(s, 200, "login", b)
    return email, b["access_token"]


BOUND_MS = 50  # the documented read-after-write bound across instances (README)


def alternating_flow(token):
    """Writes must never fail; a read on another instance may trail a write by the bound."""
    conn = http.client.HTTPConnection(HOST, timeout=10)
    served, lags, retried = [], [], [0]

    def read(path, want, check, what):
        started = time.monotonic()
        first = True
        while True:
            s, b, by = call("GET", path, None, token, conn=conn)
            served.append(by)
            if s == want and check(b):
                lags.append((time.monotonic() - started) * 1000)
                return
            if first:
                retried[0] += 1
                first = False
            if (time.monotonic() - started) * 1000 > 1000:
                sys.exit(f"FAIL {what}: still HTTP {s} {b} from {by} after 1 s")
            time.sleep(0.001)

    for n in range(20):
        s, post, by = call("POST", "/posts", {"title": f"round {n}", "body": "b", "tags": []}, token, conn=conn)
        expect(s, 201, "create", post)
        served.append(by)
        path = f"/posts/{post['id']}"
        read(path, 200, lambda p: p["version"] == 1, f"round {n} read after create")
        for method, sub, body, want, check in [
            ("PATCH", "", {"title": "two"}, 200, lambda p: p["version"] == 2),
            ("POST", "/publish", {}, 200, lambda p: p["status"] == "published" and p["version"] == 3),
            ("PATCH", "", {"title": "four"}, 200, lambda p: p["version"] == 4 and p["title"] == "four"),
        ]:
            s, b, by = call(method, path + sub, body, token, conn=conn)
            expect(s, want, f"round {n} {method} {sub or path} (a write never fails)", b)
            if not check(b):
                sys.exit(f"FAIL round {n} {method} {sub}: wrong answer {b} from {by}")
            served.append(by)
        read(path, 200, lambda p: p["version"] == 4, f"round {n} read after the last patch")
        s, b, by = call("DELETE", path, None, token, conn=conn)
        expect(s, 204, f"round {n} delete", b)
        read(path, 404, lambda p: True, f"round {n} read after delete")
    distinct = sorted(set(served))
    if len(distinct) < min(2, len(PIDS)):
        sys.exit(f"FAIL the balancer did not alternate: {distinct}")
    lags.sort()
    p99, worst = lags[int(0.99 * (len(lags) - 1))], lags[-1]
    stale = retried[0]
    print(f"alternating flow: 20 rounds, 0 failed writes, served by {distinct}; reads after a write on "
          f"another instance: {stale}/{len(lags)} needed a retry, p99 {p99:.1f} ms, max {worst:.1f} ms")
    if p99 > BOUND_MS:
        sys.exit(f"FAIL read-after-write p99 {p99:.1f} ms is over the {BOUND_MS} ms bound")


def shared_request_budget():
    conn = http.client.HTTPConnection(HOST, timeout=10)
    seen, remaining = set(), []
    for _ in range(9):
        conn.request("GET", "/api/v1/posts?limit=1", headers={"accept": "application/json"})
        r = conn.getresponse()
        r.read()
        expect(r.status, 200, "anonymous list")
        seen.add(r.getheader("x-served-by"))
        remaining.append(int(r.getheader("ratelimit-remaining")))
    steps = {a - b for a, b in zip(remaining, remaining[1:])}
    if steps != {1} or len(seen) < min(2, len(PIDS)):
        sys.exit(f"FAIL one budget for all instances: remaining {remaining} from {sorted(seen)}")
    print(f"request budget shared: RateLimit-Remaining {remaining[0]}..{remaining[-1]} across {sorted(seen)}")


def shared_login_budget(email):
    seen = set()
    for n in range(10):
        s, b, by = call("POST", "/auth/login", {"email": email, "password": "wrong password!"})
        expect(s, 401, f"bad login {n}", b)
        seen.add(by)
    for n in range(len(PIDS)):
        s, b, by = call("POST", "/auth/login", {"email": email, "password": PASSWORD})
        expect(s, 429, f"the attempt after 10 failures (on {by})", b)
        seen.add(by)
    print(f"failed-login budget shared: the 11th attempt refused on every instance ({sorted(seen)})")


class Sse:
    """A raw SSE reader that records event ids and tracks Last-Event-ID."""

    def __init__(self, token, last_id=None):
        self.conn = http.client.HTTPConnection(HOST, timeout=30)
        h = {"accept": "text/event-stream", "authorization": f"Bearer {token}"}
        if last_id is not None:
            h["last-event-id"] = str(last_id)
        self.conn.request("GET", "/api/v1/events?topics=posts", headers=h)
        self.r = self.conn.getresponse()
        if self.r.status != 200:
            sys.exit(f"FAIL SSE open: {self.r.status} {self.r.read()[:200]}")
        self.served_by = self.r.getheader("x-served-by")

    def events(self, ids, until):
        """Appends event ids to `ids` until the stream breaks or `until()` holds."""
        block = {}
        try:
            while not until():
                line = self.r.fp.readline()
                if not line:
                    return
                line = line.decode().rstrip("\r\n")
                if line == "":
                    if "id" in block and block.get("event", "").startswith("post."):
                        ids.append(int(block["id"]))
                    block = {}
                elif not line.startswith(":") and ":" in line:
                    k, v = line.split(":", 1)
                    block[k] = v.strip()
        except OSError:
            return


def stream_survives_a_killed_instance(token):
    stream = Sse(token)
    victim = stream.served_by
    ids, written = [], []

    def write(n):
        for i in range(n):
            s, b, _ = call("POST", "/posts", {"title": f"stream {len(written)}", "body": "b", "tags": []}, token)
            expect(s, 201, "create during the stream", b)
            written.append(b["id"])

    write(3)
    stream.events(ids, lambda: len(ids) >= 3)
    os.kill(int(PIDS[victim]), signal.SIGKILL)
    print(f"killed {victim} (pid {PIDS[victim]}) under an open SSE stream after event {ids[-1]}")
    stream.events(ids, lambda: False)  # reads until the stream breaks
    write(5)  # the balancer sends these to the survivors
    last = ids[-1]
    again = Sse(token, last_id=last)
    if again.served_by == victim:
        sys.exit(f"FAIL the balancer reconnected to the killed instance {victim}")
    stream_ids = list(ids)
    again.events(stream_ids, lambda: len(stream_ids) >= 8)
    if len(stream_ids) != 8 or len(set(stream_ids)) != 8 or stream_ids != sorted(stream_ids):
        sys.exit(f"FAIL events across the reconnect: {stream_ids}")
    del PIDS[victim]
    print(f"SSE resumed on {again.served_by} from Last-Event-ID {last}: 8 events, none lost or repeated")


def sigterm_under_load(token):
    s, post, _ = call("POST", "/posts", {"title": "load", "body": "b", "tags": []}, token)
    expect(s, 201, "create", post)
    failures, done, stop = [], [0], threading.Event()

    def worker():
        conn = http.client.HTTPConnection(HOST, timeout=10)
        while not stop.is_set():
            try:
                s, b, by = call("GET", f"/posts/{post['id']}", None, token, conn=conn)
                if s != 200:
                    failures.append((s, by, b))
                done[0] += 1
            except (OSError, http.client.HTTPException) as e:
                failures.append(repr(e))
                conn = http.client.HTTPConnection(HOST, timeout=10)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(1)
    victim = sorted(PIDS)[0]
    os.kill(int(PIDS[victim]), signal.SIGTERM)
    time.sleep(6)
    stop.set()
    for t in threads:
        t.join()
    if failures:
        sys.exit(f"FAIL {len(failures)} of {done[0]} requests failed around SIGTERM of {victim}: {failures[:5]}")
    print(f"SIGTERM of {victim} under load: {done[0]} requests, 0 failed")


# Every account is made first: once the login check has spent the failed-login budget of this
# address, no login from it succeeds until the window ends, on any instance.
flow, stream, load, throttled = (member(n) for n in ("flow", "stream", "load", "throttle"))
alternating_flow(flow[1])
shared_request_budget()
shared_login_budget(throttled[0])
stream_survives_a_killed_instance(stream[1])
sigterm_under_load(load[1])
print("cluster checks: all passed")
