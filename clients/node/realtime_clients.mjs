#!/usr/bin/env node
// Third-party SSE client against a live Polyport server: the `eventsource` npm package (v4),
// which reconnects with `Last-Event-ID` by itself.
//
//   node clients/node/realtime_clients.mjs http://127.0.0.1:8080
//
// 1. Anonymous `GET /api/v1/events?topics=posts`: live `post.published` events for posts created
//    and published through REST; then the stream is cut under the library (its response body ends),
//    more posts are published and a draft is written while it is away; the library reconnects on
//    its own with `Last-Event-ID` and must deliver exactly the published posts, in order, no gap,
//    no duplicate, and never the draft.
// 2. Stream token: `POST /api/v1/events/token` -> `?access_token=` on `topics=users/<me>/posts`
//    (the author sees their drafts); a normal access token in `access_token` is refused with 401;
//    the stream is cut again and the library's reconnect (same URL, same stream token,
//    `Last-Event-ID`) resumes without gap or duplicate: the exact sequence of
//    (event type, post id) must match the REST mutations made.
//
// Exits 0 when every check passes, 1 on the first failure (with the reason on stderr).

import { EventSource } from "eventsource";

const BASE = (process.argv[2] || process.env.POLYPORT_URL || "http://127.0.0.1:8080").replace(/\/$/, "");
const API = `${BASE}/api/v1`;
const TIMEOUT_MS = Number(process.env.CLIENT_TIMEOUT_MS || 90_000);
const PASSWORD = "correct horse battery staple";

const watchdog = setTimeout(() => {
    console.error(`FAIL: timed out after ${TIMEOUT_MS} ms`);
    process.exit(1);
}, TIMEOUT_MS);

function ok(cond, what) {
    if (!cond) throw new Error(`check failed: ${what}`);
    console.log(`  ok: ${what}`);
}

async function rest(method, path, body, token) {
    const headers = { "content-type": "application/json" };
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await fetch(API + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path} -> HTTP ${res.status}: ${text}`);
    return text ? JSON.parse(text) : null;
}

async function newUser(label) {
    const email = `${label}-${Date.now()}-${Math.floor(Math.random() * 1e9)}@example.com`;
    const user = await rest("POST", "/users", { email, name: `Node ${label}`, password: PASSWORD });
    const login = await rest("POST", "/auth/login", { email, password: PASSWORD });
    return { id: user.id, token: login.access_token };
}

async function createPost(token, title, publish) {
    const post = await rest("POST", "/posts", { title, body: `body of ${title}`, tags: ["realtime"] }, token);
    if (publish) await rest("POST", `/posts/${post.id}/publish`, undefined, token);
    return post.id;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond, what, ms = 15_000) {
    const deadline = Date.now() + ms;
    while (!cond()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await sleep(25);
    }
}

// A fetch for EventSource that records every request (to see `Last-Event-ID`) and lets the test
// end the current response body, as a dropped connection would: the library then reconnects.
function killableFetch() {
    const requests = [];
    let current = null;
    const fn = async (url, init) => {
        const headers = new Headers(init?.headers || {});
        requests.push({ url: String(url), lastEventId: headers.get("last-event-id") });
        const res = await fetch(url, init);
        if (!res.body) return res;
        const upstream = res.body.getReader();
        let ctrl;
        const body = new ReadableStream({
            start(c) {
                ctrl = c;
            },
            async pull(c) {
                try {
                    const { done, value } = await upstream.read();
                    if (done) c.close();
                    else c.enqueue(value);
                } catch (err) {
                    c.error(err);
                }
            },
            cancel(reason) {
                return upstream.cancel(reason);
            },
        });
        current = {
            kill() {
                upstream.cancel("test cut the stream").catch(() => {});
                try {
                    ctrl.close();
                } catch {
                    /* already closed */
                }
            },
        };
        return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
    };
    return {
        fetch: fn,
        requests,
        kill() {
            if (!current) throw new Error("no stream to cut");
            current.kill();
            current = null;
        },
    };
}

const EVENT_TYPES = [
    "user.created",
    "user.updated",
    "user.deleted",
    "post.created",
    "post.updated",
    "post.published",
    "post.unpublished",
    "post.deleted",
];

// Opens an EventSource and collects every typed event, checking the envelope of each.
function openStream(url, fetchImpl, { authorId }) {
    const es = new EventSource(url, { fetch: fetchImpl });
    const seen = [];
    const state = { opens: 0, errors: [], seen, es, lastId: 0, badEnvelope: null };
    es.addEventListener("open", () => {
        state.opens += 1;
    });
    es.addEventListener("error", (e) => {
        state.errors.push(e.message || e.code || "error");
    });
    for (const type of EVENT_TYPES) {
        es.addEventListener(type, (msg) => {
            let env;
            try {
                env = JSON.parse(msg.data);
            } catch (e) {
                state.badEnvelope = `unparseable data: ${msg.data}`;
                return;
            }
            for (const k of ["id", "type", "topic", "occurred_at", "data"]) {
                if (!(k in env)) state.badEnvelope = `envelope without ${k}: ${msg.data}`;
            }
            if (env.type !== type) state.badEnvelope = `event: ${type} but envelope type ${env.type}`;
            if (String(env.id) !== msg.lastEventId) state.badEnvelope = `id: ${msg.lastEventId} but envelope id ${env.id}`;
            if (!(Number(env.id) > state.lastId)) state.badEnvelope = `event id ${env.id} after ${state.lastId}`;
            state.lastId = Number(env.id);
            // Only our own posts: other clients may share the server.
            if (type.startsWith("post.") && env.data && env.data.author_id !== undefined && env.data.author_id !== authorId) {
                return;
            }
            seen.push({ id: Number(env.id), type, postId: env.data?.id, status: env.data?.status, topic: env.topic });
        });
    }
    return state;
}

async function anonymousWithReconnect() {
    console.log("SSE (eventsource): anonymous topics=posts, live + library reconnect with Last-Event-ID");
    const writer = await newUser("sse-writer");
    const kf = killableFetch();
    const s = openStream(`${API}/events?topics=posts`, kf.fetch, { authorId: writer.id });
    await waitFor(() => s.opens === 1, "the stream to open");
    ok(kf.requests.length === 1 && kf.requests[0].lastEventId === null, "first request carries no Last-Event-ID");

    const published = [];
    for (let i = 1; i <= 3; i++) published.push(await createPost(writer.token, `live ${i}`, true));
    await waitFor(() => s.seen.length >= 3, "3 live post.published events");
    ok(s.seen.every((e) => e.type === "post.published" && e.status === "published"), "anonymous sees post.published of published posts");
    const lastBeforeCut = s.seen[s.seen.length - 1].id;

    kf.kill();
    await waitFor(() => s.es.readyState === s.es.CONNECTING, "the library to notice the cut");
    ok(true, "stream cut under the library; it is reconnecting");
    const draft = await createPost(writer.token, "a draft nobody else may see", false);
    for (let i = 4; i <= 6; i++) published.push(await createPost(writer.token, `while away ${i}`, true));

    await waitFor(() => s.opens === 2, "the library to reconnect", 20_000);
    ok(kf.requests.length === 2, "exactly one reconnect request");
    ok(kf.requests[1].lastEventId === String(lastBeforeCut), `reconnect sent Last-Event-ID: ${lastBeforeCut}`);
    for (let i = 7; i <= 8; i++) published.push(await createPost(writer.token, `after reconnect ${i}`, true));
    await waitFor(() => s.seen.length >= 8, "8 post.published events in total");
    await sleep(500); // anything extra (a duplicate) would arrive now
    s.es.close();

    ok(s.badEnvelope === null, `every envelope well-formed (${s.badEnvelope || "ok"})`);
    const got = s.seen.map((e) => e.postId);
    ok(JSON.stringify(got) === JSON.stringify(published), `received exactly the 8 published posts in order (got ${got.length})`);
    ok(new Set(s.seen.map((e) => e.id)).size === s.seen.length, "no duplicate event id");
    ok(!got.includes(draft) && !s.seen.some((e) => e.postId === draft), "the draft never reached the anonymous stream");
    ok(s.seen.every((e) => e.topic === `posts/${e.postId}`), "topic is posts/<post id>");
}

async function streamTokenWithReconnect() {
    console.log("SSE (eventsource): stream token (?access_token=), users/<me>/posts, drafts, reconnect");
    const me = await newUser("sse-token");

    // A normal access token must not be accepted in the query string.
    const refused = await fetch(`${API}/events?topics=posts&access_token=${encodeURIComponent(me.token)}`);
    const refusedBody = await refused.text();
    ok(refused.status === 401, `access token in ?access_token= refused with 401 (got ${refused.status})`);
    const refusedJson = JSON.parse(refusedBody);
    ok(refusedJson?.error?.code === "UNAUTHENTICATED", "refusal uses the JSON error envelope with UNAUTHENTICATED");

    const minted = await (async () => {
        const res = await fetch(`${API}/events/token`, { method: "POST", headers: { authorization: `Bearer ${me.token}` } });
        const text = await res.text();
        if (res.status !== 201) throw new Error(`POST /events/token -> HTTP ${res.status}: ${text}`);
        return JSON.parse(text);
    })();
    ok(typeof minted.token === "string" && minted.token.length > 0, "POST /events/token answered 201 with a token");
    // It lives with the session that minted it (revocation ends it), not with the access token.
    ok(Number(minted.expires_in) > 3600, `stream token outlives the access token (expires_in ${minted.expires_in})`);

    const kf = killableFetch();
    const url = `${API}/events?topics=${encodeURIComponent(`users/${me.id}/posts`)}&access_token=${encodeURIComponent(minted.token)}`;
    const s = openStream(url, kf.fetch, { authorId: me.id });
    await waitFor(() => s.opens === 1, "the token stream to open");

    const expected = [];
    const d2 = await createPost(me.token, "token draft", false);
    expected.push(["post.created", d2]);
    await rest("POST", `/posts/${d2}/publish`, undefined, me.token);
    expected.push(["post.published", d2]);
    await waitFor(() => s.seen.length >= 2, "draft created + published events");
    ok(s.seen[0].status === "draft", "the author sees its own draft over the stream");

    kf.kill();
    await waitFor(() => s.es.readyState === s.es.CONNECTING, "the library to notice the cut");
    const d3 = await createPost(me.token, "token while away", true);
    expected.push(["post.created", d3], ["post.published", d3]);
    await waitFor(() => s.opens === 2, "the library to reconnect with the same stream token", 20_000);
    ok(kf.requests[1].lastEventId === String(s.seen[1].id), "reconnect sent Last-Event-ID with the stream token URL");
    await rest("DELETE", `/posts/${d2}`, undefined, me.token);
    expected.push(["post.deleted", d2]);
    await waitFor(() => s.seen.length >= expected.length, `${expected.length} events`);
    await sleep(500);
    s.es.close();

    ok(s.badEnvelope === null, `every envelope well-formed (${s.badEnvelope || "ok"})`);
    const got = s.seen.map((e) => [e.type, e.postId]);
    ok(
        JSON.stringify(got) === JSON.stringify(expected),
        `event sequence matches the REST mutations across the reconnect:\n      got      ${JSON.stringify(got)}\n      expected ${JSON.stringify(expected)}`,
    );
}

try {
    await anonymousWithReconnect();
    await streamTokenWithReconnect();
    clearTimeout(watchdog);
    console.log("realtime_clients.mjs: all checks passed");
    process.exit(0);
} catch (err) {
    console.error(`FAIL: ${err.stack || err}`);
    process.exit(1);
}
