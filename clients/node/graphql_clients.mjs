// Third-party GraphQL clients against a live Polyport server (issue 4, item 8):
//   - graphql-js 16: buildClientSchema on the served introspection result, the result equals the
//     committed schema/schema.graphql, and every operation (README ```graphql blocks plus the
//     operations below) validates against it.
//   - graphql-ws 6 + ws: live subscription events (graphql-transport-ws) with credentials in
//     connection_init; anonymous subscribers never see drafts; bad credentials close with 4403.
// Usage: node clients/node/graphql_clients.mjs http://127.0.0.1:PORT
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  buildClientSchema, buildSchema, getIntrospectionQuery, lexicographicSortSchema, parse, printSchema, validate,
} from "graphql";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const base = process.argv[2];
if (!base) throw new Error("usage: graphql_clients.mjs BASE_URL");
const root = fileURLToPath(new URL("../../", import.meta.url));
const wsUrl = base.replace(/^http/, "ws") + "/graphql/ws";

async function gql(query, variables = {}, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const r = await fetch(`${base}/graphql`, { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  return r.json();
}

const OPERATIONS = {
  register: `mutation Register($input: RegisterInput!) { register(input: $input) { id name email role } }`,
  login: `mutation Login($input: LoginInput!) { login(input: $input) { accessToken tokenType expiresIn refreshToken } }`,
  createPost: `mutation Create($input: CreatePostInput!) { createPost(input: $input) { id title status version } }`,
  publishPost: `mutation Publish($id: ID!) { publishPost(id: $id) { id status publishedAt } }`,
  posts: `query Posts($first: Int, $after: String, $filter: PostFilterInput) {
    posts(first: $first, after: $after, filter: $filter) {
      edges { cursor node { id title tags author { id name } } } pageInfo { hasNextPage endCursor } } }`,
  post: `query Post($id: ID!) { post(id: $id) { id title body status author { name } } }`,
  me: `query Me { me { id email role posts(first: 5) { edges { node { title } } } } }`,
  users: `query Users { users(first: 10) { edges { node { id name } } pageInfo { hasNextPage } } }`,
  postEvents: `subscription PostEvents { postEvents { id type topic occurredAt post { id title status author { name } } } }`,
  events: `subscription Events($after: ID) { events(topics: ["posts"], after: $after) { id type topic data } }`,
  userEvents: `subscription UserEvents($id: ID!) { userEvents(id: $id) { type user { id name } } }`,
};

function readmeOperations() {
  const text = readFileSync(`${root}/README.md`, "utf8");
  return [...text.matchAll(/```graphql\n([\s\S]*?)```/g)].map((m) => m[1]);
}

async function schemaChecks() {
  const introspection = await gql(getIntrospectionQuery());
  assert.equal(introspection.errors, undefined, JSON.stringify(introspection.errors));
  const schema = buildClientSchema(introspection.data);
  const committed = buildSchema(readFileSync(`${root}/schema/schema.graphql`, "utf8"));
  assert.equal(printSchema(lexicographicSortSchema(schema)), printSchema(lexicographicSortSchema(committed)),
    "the served schema equals schema/schema.graphql");
  const docs = [...readmeOperations(), ...Object.values(OPERATIONS)];
  for (const doc of docs) {
    const errors = validate(schema, parse(doc));
    assert.deepEqual(errors.map(String), [], `operation validates:\n${doc}`);
  }
  console.log(`graphql-js: schema built from introspection; ${docs.length} operations valid`);
}

function nextEvent(client, query, variables, predicate, label) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { dispose(); reject(new Error(`timeout waiting for ${label}`)); }, 10000);
    const dispose = client.subscribe({ query, variables }, {
      next: (msg) => {
        if (msg.errors) { clearTimeout(timer); dispose(); reject(new Error(JSON.stringify(msg.errors))); return; }
        if (predicate(msg.data)) { clearTimeout(timer); dispose(); resolve(msg.data); }
      },
      error: (e) => { clearTimeout(timer); reject(e instanceof Error ? e : new Error(JSON.stringify(e))); },
      complete: () => {},
    });
  });
}

async function subscriptionChecks() {
  const email = `gqlws-${Date.now()}@example.com`;
  const reg = await gql(OPERATIONS.register, { input: { email, name: "Ada", password: "correct horse battery" } });
  assert.equal(reg.errors, undefined, JSON.stringify(reg.errors));
  const login = await gql(OPERATIONS.login, { input: { email, password: "correct horse battery" } });
  const token = login.data.login.accessToken;

  const mine = createClient({ url: wsUrl, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${token}` }, retryAttempts: 0 });
  const anon = createClient({ url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 0 });
  const title = `live-${Date.now()}`;
  const ownDraft = nextEvent(mine, OPERATIONS.postEvents, {}, (d) => d.postEvents.post.title === title, "own draft event");
  const publicEvent = nextEvent(anon, OPERATIONS.events, {}, (d) => d.events.data.title === title, "public event");
  await new Promise((r) => setTimeout(r, 300));
  const created = await gql(OPERATIONS.createPost, { input: { title, tags: ["live"] } }, token);
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  const draft = await ownDraft;
  assert.equal(draft.postEvents.type, "post.created");
  assert.equal(draft.postEvents.post.status, "DRAFT");
  assert.equal(draft.postEvents.post.author.name, "Ada");
  await gql(OPERATIONS.publishPost, { id: created.data.createPost.id }, token);
  const pub = await publicEvent;
  assert.equal(pub.events.type, "post.published", "anonymous subscribers see the post only once published");
  console.log("graphql-ws: live events delivered (own draft to its author, published post to anonymous)");

  const bad = createClient({ url: wsUrl, webSocketImpl: WebSocket, connectionParams: { authorization: "Bearer nope" }, retryAttempts: 0 });
  const closeCode = await new Promise((resolve) => {
    bad.on("closed", (ev) => resolve(ev.code));
    bad.subscribe({ query: OPERATIONS.postEvents }, { next() {}, error() {}, complete() {} });
  });
  assert.equal(closeCode, 4403, "bad credentials close with 4403");
  console.log("graphql-ws: bad credentials closed with 4403");
  await Promise.all([mine.dispose(), anon.dispose(), bad.dispose()]);
}

await schemaChecks();
await subscriptionChecks();
console.log("graphql clients (Node): ok");
