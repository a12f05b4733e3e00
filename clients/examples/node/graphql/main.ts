// A TypeScript GraphQL client: queries and mutations over HTTP with fetch, a subscription over
// WebSocket with graphql-ws. Registers, logs in, creates a post, reads it, publishes it and
// receives the post's events as they happen.
//
// Run (from clients/examples/node, after `npm ci && npm run build`):
//   node dist/graphql/main.js http://127.0.0.1:8080
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const base = (process.argv[2] ?? "http://127.0.0.1:8080").replace(/\/$/, "");

/** One GraphQL request over HTTP; throws on errors (each carries `extensions.code`). */
async function graphql<T>(query: string, variables: Record<string, unknown> = {}, token?: string): Promise<T> {
  const response = await fetch(`${base}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
  if (body.errors?.length) {
    const e = body.errors[0];
    throw new Error(`${e.extensions?.code ?? "ERROR"}: ${e.message}`);
  }
  return body.data as T;
}

const email = `graphql-${Date.now()}@example.com`;
const password = "correct horse battery";

const { register } = await graphql<{ register: { id: string } }>(
  "mutation ($input: RegisterInput!) { register(input: $input) { id } }",
  { input: { email, name: "Grace", password } },
);
const { login } = await graphql<{ login: { accessToken: string } }>(
  "mutation ($input: LoginInput!) { login(input: $input) { accessToken } }",
  { input: { email, password } },
);
const token = login.accessToken;
console.log(`registered and logged in as ${register.id}`);

type Post = { id: string; title: string; status: string; version: number; author: { name: string } | null };
const { createPost } = await graphql<{ createPost: Post }>(
  "mutation ($input: CreatePostInput!) { createPost(input: $input) { id title status version author { name } } }",
  { input: { title: "Hello from graphql-ws", body: "One core, many protocols.", tags: ["graphql"] } },
  token,
);
console.log(`created ${createPost.id}: ${createPost.status} v${createPost.version} by ${createPost.author?.name}`);

const { post } = await graphql<{ post: Post | null }>(
  "query ($id: ID!) { post(id: $id) { id title status version author { name } } }",
  { id: createPost.id },
  token,
);
console.log(`read back: "${post?.title}"`);

// Subscribe to this post's events. `after: "0"` replays its earlier events (post.created) from
// the log first, so nothing is missed between the mutation and the subscription.
const ws = createClient({
  url: `${base.replace(/^http/, "ws")}/graphql/ws`,
  webSocketImpl: WebSocket,
  connectionParams: { authorization: `Bearer ${token}` },
});
type Event = { id: string; type: string; topic: string };
const events = ws.iterate<{ events: Event }>({
  query: "subscription ($topics: [String!], $after: ID) { events(topics: $topics, after: $after) { id type topic } }",
  variables: { topics: [`posts/${createPost.id}`], after: "0" },
});
const seen: string[] = [];
const timeout = setTimeout(() => {
  console.error(`no post.published event within 10 s (seen: ${seen.join(", ")})`);
  process.exit(1);
}, 10_000);
let published = false;
for await (const result of events) {
  const event = result.data?.events;
  if (!event) throw new Error(`subscription error: ${JSON.stringify(result.errors)}`);
  seen.push(event.type);
  console.log(`event ${event.id}: ${event.type} on ${event.topic}`);
  if (event.type === "post.created" && !published) {
    published = true;
    await graphql("mutation ($id: ID!) { publishPost(id: $id) { status } }", { id: createPost.id }, token);
  }
  if (event.type === "post.published") break;
}
clearTimeout(timeout);
await ws.dispose();
console.log("graphql example: done");
