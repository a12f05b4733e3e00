// The Polyport console: sign in, run one post operation over the protocol picked (REST,
// GraphQL, gRPC-Web, SOAP or a /ws request frame) showing the request and response as they went
// over the wire, and four live panes (SSE, /ws, GraphQL subscription, gRPC-Web stream) showing
// the same events. Talks to this origin only; no library, no build step.
"use strict";

(function () {
  const P = window.PolyportProto;
  const $ = (sel) => document.querySelector(sel);
  const state = { token: null, user: null, outcome: null, panes: {}, history: [] };
  window.polyportConsole = state;

  // ------------------------------------------------------------------ wire display ----

  function showWire(request, response) {
    $("#wire-request").textContent = request;
    $("#wire-response").textContent = response;
  }

  function headerLines(headers) {
    return Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join("\n");
  }

  function responseHead(res) {
    const lines = [`HTTP/1.1 ${res.status} ${res.statusText}`];
    res.headers.forEach((v, k) => lines.push(`${k}: ${v}`));
    return lines.join("\n");
  }

  /** A fetch whose request and response are shown as text; answers {res, text, json}. */
  async function http(method, path, headers, body) {
    const shown = `${method} ${path} HTTP/1.1\nhost: ${location.host}\n${headerLines(headers)}\n(+ the browser's own headers)\n\n${body || ""}`;
    showWire(shown, "…");
    const res = await fetch(path, { method, headers, body });
    const text = await res.text();
    showWire(shown, `${responseHead(res)}\n\n${text}`);
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    return { res, text, json };
  }

  function authHeaders(extra) {
    const h = { ...extra };
    if (state.token) h.authorization = `Bearer ${state.token}`;
    return h;
  }

  function setOutcome(protocol, op, ok, detail) {
    state.outcome = { protocol, op, ok, ...detail };
    state.history.push(state.outcome);
    const el = $("#outcome");
    el.dataset.state = ok ? "ok" : "error";
    el.dataset.code = detail.code || "";
    el.textContent = ok
      ? `${protocol} ${op}: ok${detail.postId ? ` (post ${detail.postId})` : ""}`
      : `${protocol} ${op}: ${detail.code || "error"}: ${detail.message || ""}`;
  }

  // -------------------------------------------------------------------- account ----

  async function register() {
    const body = JSON.stringify({ email: $("#email").value, name: $("#name").value, password: $("#password").value });
    const { res, json } = await http("POST", "/api/v1/users", { "content-type": "application/json" }, body);
    whoami(res.ok ? `registered ${json.email}: now sign in` : `register: ${json?.error?.code}`, res.ok ? "anonymous" : "error");
    return res.ok;
  }

  async function login() {
    const body = JSON.stringify({ email: $("#email").value, password: $("#password").value });
    const { res, json } = await http("POST", "/api/v1/auth/login", { "content-type": "application/json" }, body);
    if (!res.ok) {
      whoami(`sign in: ${json?.error?.code}`, "error");
      return false;
    }
    state.token = json.access_token;
    const me = await fetch("/api/v1/users/me", { headers: authHeaders({}) }).then((r) => r.json());
    state.user = me;
    whoami(`signed in as ${me.email} (${me.role}, ${me.id})`, "signed-in");
    startPanes();
    return true;
  }

  function whoami(text, s) {
    const el = $("#whoami");
    el.textContent = text;
    el.dataset.state = s;
  }

  // ----------------------------------------------------------------- operations ----

  function form() {
    const tags = $("#tags").value.split(",").map((t) => t.trim()).filter(Boolean);
    return { id: $("#post-id").value.trim(), title: $("#title").value, body: $("#body").value, tags };
  }

  const REST = {
    create: (f) => ["POST", "/api/v1/posts", { title: f.title, body: f.body, tags: f.tags }],
    update: (f) => ["PATCH", `/api/v1/posts/${encodeURIComponent(f.id)}`, { title: f.title, body: f.body, tags: f.tags }],
    publish: (f) => ["POST", `/api/v1/posts/${encodeURIComponent(f.id)}/publish`, undefined],
    get: (f) => ["GET", `/api/v1/posts/${encodeURIComponent(f.id)}`, undefined],
    list: () => ["GET", "/api/v1/posts?limit=5", undefined],
    delete: (f) => ["DELETE", `/api/v1/posts/${encodeURIComponent(f.id)}`, undefined],
  };

  async function viaRest(op, f) {
    const [method, path, body] = REST[op](f);
    const headers = authHeaders(body === undefined ? {} : { "content-type": "application/json" });
    const { res, json } = await http(method, path, headers, body === undefined ? undefined : JSON.stringify(body));
    if (!res.ok) return { ok: false, code: json?.error?.code, message: json?.error?.message };
    const post = op === "list" ? json.data[0] : json;
    return { ok: true, postId: op === "delete" ? f.id : post?.id };
  }

  const FIELDS = "id title body status tags version authorId";
  const GRAPHQL = {
    create: (f) => [`mutation Create($input: CreatePostInput!) { createPost(input: $input) { ${FIELDS} } }`, { input: { title: f.title, body: f.body, tags: f.tags } }, "createPost"],
    update: (f) => [`mutation Update($id: ID!, $input: UpdatePostInput!) { updatePost(id: $id, input: $input) { ${FIELDS} } }`, { id: f.id, input: { title: f.title, body: f.body, tags: f.tags } }, "updatePost"],
    publish: (f) => [`mutation Publish($id: ID!) { publishPost(id: $id) { ${FIELDS} } }`, { id: f.id }, "publishPost"],
    get: (f) => [`query Get($id: ID!) { post(id: $id) { ${FIELDS} } }`, { id: f.id }, "post"],
    list: () => [`query List { posts(first: 5) { edges { node { ${FIELDS} } } pageInfo { hasNextPage endCursor } } }`, {}, "posts"],
    delete: (f) => [`mutation Delete($id: ID!) { deletePost(id: $id) }`, { id: f.id }, "deletePost"],
  };

  async function viaGraphql(op, f) {
    const [query, variables, field] = GRAPHQL[op](f);
    const headers = authHeaders({ "content-type": "application/json", accept: "application/graphql-response+json" });
    const { json } = await http("POST", "/graphql", headers, JSON.stringify({ query, variables }));
    const error = json?.errors?.[0];
    if (error || !json?.data?.[field]) return { ok: false, code: error?.extensions?.code, message: error?.message };
    const data = json.data[field];
    const postId = op === "list" ? data.edges[0]?.node.id : op === "delete" ? data : data.id;
    return { ok: true, postId };
  }

  const GRPC = {
    create: (f) => ["PostService/CreatePost", "CreatePostRequest", { title: f.title, body: f.body, tags: f.tags }, "Post"],
    update: (f) => ["PostService/UpdatePost", "UpdatePostRequest", { id: f.id, title: f.title, body: f.body, tags: f.tags }, "Post"],
    publish: (f) => ["PostService/PublishPost", "PublishPostRequest", { id: f.id }, "Post"],
    get: (f) => ["PostService/GetPost", "GetPostRequest", { id: f.id }, "Post"],
    list: () => ["PostService/ListPosts", "ListPostsRequest", { limit: 5 }, "ListPostsResponse"],
    delete: (f) => ["PostService/DeletePost", "DeletePostRequest", { id: f.id }, "DeletePostResponse"],
  };

  /** A gRPC-Web call over fetch: unary or server streaming; every frame shown. */
  async function grpcWeb(method, reqType, message, respType, { onMessage, onHeaders, signal } = {}) {
    const path = `/polyport.v1.${method}`;
    const body = P.frame(P.encode(`polyport.v1.${reqType}`, message));
    const headers = authHeaders({ "content-type": "application/grpc-web+proto", accept: "application/grpc-web+proto", "x-grpc-web": "1" });
    const shownRequest = `POST ${path} HTTP/1.1\nhost: ${location.host}\n${headerLines(headers)}\n\n` +
      `${P.hex(body)}\n\n# frame 0x00, ${body.length - 5} bytes: polyport.v1.${reqType}\n${JSON.stringify(message, null, 2)}`;
    const res = await fetch(path, { method: "POST", headers, body, signal });
    if (onHeaders) onHeaders(res);
    const shownFrames = [];
    const messages = [];
    let trailers = {};
    res.headers.forEach((v, k) => {
      if (k.startsWith("grpc-")) trailers[k] = v;
    });
    const reader = res.body.getReader();
    let buf = new Uint8Array(0);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const joined = new Uint8Array(buf.length + value.length);
      joined.set(buf);
      joined.set(value, buf.length);
      const { frames, rest } = P.unframe(joined);
      buf = rest;
      for (const fr of frames) {
        const raw = P.hex(fr.raw);
        if (fr.trailers) {
          trailers = { ...trailers, ...P.trailers(fr.bytes) };
          shownFrames.push(`${raw}\n# trailers frame 0x80\n${new TextDecoder().decode(fr.bytes)}`);
        } else {
          const m = P.decode(`polyport.v1.${respType}`, fr.bytes);
          messages.push(m);
          if (onMessage) onMessage(m);
          shownFrames.push(`${raw}\n# frame 0x00, ${fr.bytes.length} bytes: polyport.v1.${respType}\n${JSON.stringify(m, null, 2)}`);
        }
      }
    }
    const status = Number(trailers["grpc-status"] ?? 2);
    const details = P.statusDetails(trailers["grpc-status-details-bin"]);
    let shownResponse = `${responseHead(res)}\n\n${shownFrames.join("\n\n")}`;
    if (details) shownResponse += `\n\n# grpc-status-details-bin, decoded (google.rpc.Status)\n${JSON.stringify(details, null, 2)}`;
    return { status, message: decodeURIComponent(trailers["grpc-message"] || ""), details, messages, shownRequest, shownResponse };
  }

  async function viaGrpcWeb(op, f) {
    const [method, reqType, message, respType] = GRPC[op](f);
    showWire(`POST /polyport.v1.${method} …`, "…");
    const r = await grpcWeb(method, reqType, message, respType);
    showWire(r.shownRequest, r.shownResponse);
    if (r.status !== 0) {
      const info = r.details?.details?.find((d) => (d["@type"] || "").endsWith("google.rpc.ErrorInfo"));
      return { ok: false, code: info?.reason || `grpc-status ${r.status}`, message: r.message };
    }
    const first = r.messages[0];
    const postId = op === "list" ? first?.post?.id : op === "delete" ? f.id : first?.id;
    return { ok: true, postId };
  }

  function xml(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }
  const SOAP = {
    create: (f) => ["CreatePost", `<p:title>${xml(f.title)}</p:title><p:body>${xml(f.body)}</p:body><p:tags>${f.tags.map((t) => `<p:tag>${xml(t)}</p:tag>`).join("")}</p:tags>`],
    update: (f) => ["UpdatePost", `<p:id>${xml(f.id)}</p:id><p:title>${xml(f.title)}</p:title><p:body>${xml(f.body)}</p:body><p:tags>${f.tags.map((t) => `<p:tag>${xml(t)}</p:tag>`).join("")}</p:tags>`],
    publish: (f) => ["PublishPost", `<p:id>${xml(f.id)}</p:id>`],
    get: (f) => ["GetPost", `<p:id>${xml(f.id)}</p:id>`],
    list: () => ["ListPosts", `<p:limit>5</p:limit>`],
    delete: (f) => ["DeletePost", `<p:id>${xml(f.id)}</p:id>`],
  };

  async function viaSoap(op, f) {
    const [name, inner] = SOAP[op](f);
    const envelope = `<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:p="urn:polyport:v1">
  <soap:Body>
    <p:${name}>${inner}</p:${name}>
  </soap:Body>
</soap:Envelope>`;
    const headers = authHeaders({ "content-type": "text/xml; charset=utf-8", soapaction: `"urn:polyport:v1#${name}"` });
    const { res, text } = await http("POST", "/soap", headers, envelope);
    const doc = new DOMParser().parseFromString(text, "application/xml");
    const byName = (n) => Array.from(doc.getElementsByTagNameNS("*", n));
    if (!res.ok || byName("Fault").length) {
      return { ok: false, code: byName("code")[0]?.textContent, message: byName("message")[0]?.textContent || byName("faultstring")[0]?.textContent };
    }
    const post = byName("post")[0];
    const postId = op === "delete" ? f.id : post ? Array.from(post.children).find((c) => c.localName === "id")?.textContent : undefined;
    return { ok: true, postId };
  }

  const WS_OPS = {
    create: (f) => ["createPost", { title: f.title, body: f.body, tags: f.tags }],
    update: (f) => ["updatePost", { id: f.id, title: f.title, body: f.body, tags: f.tags }],
    publish: (f) => ["publishPost", { id: f.id }],
    get: (f) => ["getPost", { id: f.id }],
    list: () => ["listPosts", { limit: 5 }],
    delete: (f) => ["deletePost", { id: f.id }],
  };

  /** The /ws connection that carries request frames (the live pane has its own). */
  let requestSocket = null;
  let requestSeq = 0;
  function wsUrl(path) {
    return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`;
  }
  function openRequestSocket() {
    if (requestSocket && requestSocket.token === state.token && requestSocket.ws.readyState === WebSocket.OPEN) {
      return Promise.resolve(requestSocket);
    }
    if (requestSocket) requestSocket.ws.close();
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(wsUrl("/ws"));
      const conn = { ws, token: state.token, waiting: new Map(), log: [] };
      ws.onmessage = (m) => {
        const frame = JSON.parse(m.data);
        frame.raw = m.data;
        conn.log.push(`<- ${m.data}`);
        const waiter = conn.waiting.get(frame.id);
        if (waiter) {
          conn.waiting.delete(frame.id);
          waiter(frame);
        }
      };
      ws.onerror = () => reject(new Error("the /ws connection failed"));
      ws.onopen = async () => {
        if (state.token) {
          const auth = { type: "auth", id: "auth", token: state.token };
          const reply = await send(conn, auth, "{\"type\":\"auth\",\"id\":\"auth\",\"token\":\"<access token>\"}");
          if (reply.type !== "response") return reject(new Error(`auth refused: ${reply.code}`));
        }
        requestSocket = conn;
        resolve(conn);
      };
    });
  }
  function send(conn, frame, shown) {
    return new Promise((resolve) => {
      conn.waiting.set(frame.id, resolve);
      const text = JSON.stringify(frame);
      conn.log.push(`-> ${shown || text}`);
      conn.ws.send(text);
    });
  }

  async function viaWs(op, f) {
    const [name, params] = WS_OPS[op](f);
    const conn = await openRequestSocket();
    conn.log.length = 0;
    const frame = { type: "request", id: `r${++requestSeq}`, op: name, params };
    const shownRequest = `GET /ws HTTP/1.1 (WebSocket, one connection for requests${state.token ? ", signed in by an auth frame" : ""})\n\n` +
      `-> ${JSON.stringify(frame)}`;
    showWire(shownRequest, "…");
    const reply = await send(conn, frame);
    showWire(shownRequest, `<- ${reply.raw}`);
    if (reply.type === "error") return { ok: false, code: reply.code, message: reply.message };
    const data = reply.data;
    const postId = op === "list" ? data.data?.[0]?.id : op === "delete" ? f.id : data?.id;
    return { ok: true, postId };
  }

  const PROTOCOLS = { rest: viaRest, graphql: viaGraphql, grpcweb: viaGrpcWeb, soap: viaSoap, ws: viaWs };

  async function run(op, overrides) {
    const protocol = $("#protocol").value;
    const f = { ...form(), ...overrides };
    $("#outcome").dataset.state = "running";
    let r;
    try {
      r = await PROTOCOLS[protocol](op, f);
    } catch (e) {
      r = { ok: false, code: "CLIENT", message: String(e) };
    }
    if (r.ok && op === "create") $("#post-id").value = r.postId;
    if (r.ok && op === "delete") $("#post-id").value = "";
    setOutcome(protocol, op, r.ok, r);
    return r;
  }

  // ----------------------------------------------------------------- live panes ----

  /** A live pane's view for the streams of the current sign-in (older streams, still closing, are ignored). */
  function pane(name) {
    const root = $(`#pane-${name}`);
    const generation = state.generation;
    return {
      status(s, text) {
        if (generation !== state.generation) return;
        const el = root.querySelector(".state");
        el.dataset.state = s;
        el.textContent = text || s;
      },
      add(id, type, postId) {
        if (generation !== state.generation) return;
        const li = document.createElement("li");
        li.dataset.eventId = String(id);
        li.dataset.type = type;
        li.dataset.post = postId || "";
        li.textContent = `#${id} ${type} ${postId || ""}`;
        root.querySelector(".events").prepend(li);
      },
      clear() {
        root.querySelector(".events").textContent = "";
        this.status("connecting");
      },
    };
  }

  function stopPanes() {
    for (const stop of Object.values(state.panes)) stop();
    state.panes = {};
  }

  async function startPanes() {
    stopPanes();
    state.generation = (state.generation || 0) + 1;
    for (const name of ["sse", "ws", "graphql", "grpcweb"]) pane(name).clear();
    const topics = ["posts"];
    await Promise.all([startSse(topics), startWs(topics), startGraphql(topics), startGrpcWeb(topics)].map((p) => p.catch((e) => console.error(e))));
  }

  async function startSse(topics) {
    const p = pane("sse");
    let query = `topics=${topics.join(",")}`;
    if (state.token) {
      // EventSource cannot send headers: a stream token (tied to this session) goes in the URL.
      const r = await fetch("/api/v1/events/token", { method: "POST", headers: authHeaders({}) });
      const minted = await r.json();
      if (!r.ok) return p.status("error", minted?.error?.code);
      query += `&access_token=${encodeURIComponent(minted.token)}`;
    }
    const es = new EventSource(`/api/v1/events?${query}`);
    const types = ["post.created", "post.updated", "post.published", "post.unpublished", "post.deleted"];
    const on = (e) => {
      const env = JSON.parse(e.data);
      p.add(env.id, env.type, env.data?.id);
    };
    for (const t of types) es.addEventListener(t, on);
    es.addEventListener("error", (e) => {
      if (e.data) p.status("error", JSON.parse(e.data).code);
      else p.status(es.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
    });
    es.onopen = () => p.status("live", "live");
    state.panes.sse = () => es.close();
  }

  function startWs(topics) {
    const p = pane("ws");
    const ws = new WebSocket(wsUrl("/ws"));
    ws.onopen = () => {
      if (state.token) ws.send(JSON.stringify({ type: "auth", id: "auth", token: state.token }));
      ws.send(JSON.stringify({ type: "subscribe", id: "console", topics }));
    };
    ws.onmessage = (m) => {
      const frame = JSON.parse(m.data);
      if (frame.type === "response" && frame.id === "console") p.status("live", "live");
      else if (frame.type === "event") p.add(frame.event_id, frame.event_type, frame.data?.id);
      else if (frame.type === "error") p.status("error", frame.code);
    };
    ws.onclose = () => p.status("closed");
    state.panes.ws = () => ws.close();
    return Promise.resolve();
  }

  function startGraphql(topics) {
    const p = pane("graphql");
    const ws = new WebSocket(wsUrl("/graphql/ws"), "graphql-transport-ws");
    ws.onopen = () => {
      const payload = state.token ? { authorization: `Bearer ${state.token}` } : {};
      ws.send(JSON.stringify({ type: "connection_init", payload }));
    };
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (msg.type === "connection_ack") {
        const query = "subscription Events($topics: [String!]) { events(topics: $topics) { id type topic data } }";
        ws.send(JSON.stringify({ id: "console", type: "subscribe", payload: { query, variables: { topics } } }));
        p.status("live", "live");
      } else if (msg.type === "next") {
        const e = msg.payload?.data?.events;
        if (e) p.add(e.id, e.type, e.data?.id);
        else p.status("error", msg.payload?.errors?.[0]?.extensions?.code);
      } else if (msg.type === "ping") {
        ws.send(JSON.stringify({ type: "pong" }));
      } else if (msg.type === "error") {
        p.status("error", msg.payload?.[0]?.extensions?.code);
      }
    };
    ws.onclose = () => p.status("closed");
    state.panes.graphql = () => ws.close();
    return Promise.resolve();
  }

  function startGrpcWeb(topics) {
    const p = pane("grpcweb");
    const abort = new AbortController();
    state.panes.grpcweb = () => abort.abort();
    p.status("connecting");
    const onHeaders = (res) => p.status(res.ok ? "live" : "error", res.ok ? "live" : `HTTP ${res.status}`);
    const onMessage = (e) => p.add(e.id, e.type, e.data?.id);
    grpcWeb("EventService/Subscribe", "SubscribeRequest", { topics }, "Event", { onMessage, onHeaders, signal: abort.signal })
      .then((r) => p.status(r.status === 0 ? "closed" : "error", r.status === 0 ? "ended" : `grpc-status ${r.status}`))
      .catch(() => p.status("closed"));
    return Promise.resolve();
  }

  // ---------------------------------------------------------------------- wiring ----

  document.addEventListener("DOMContentLoaded", () => {
    $("#email").value = `console-${Date.now().toString(36)}@example.com`;
    $("#register").addEventListener("click", register);
    $("#login").addEventListener("click", login);
    $("#send").addEventListener("click", () => run($("#operation").value));
    $("#empty-title").addEventListener("click", () => run("create", { title: "" }));
    state.run = run;
    state.register = register;
    state.login = login;
    startPanes();
  });
})();
