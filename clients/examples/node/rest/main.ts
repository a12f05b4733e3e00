// A typed TypeScript REST client: `gen/rest.d.ts` is generated from the server's OpenAPI
// document by openapi-typescript (`npm run gen:rest`), and openapi-fetch checks every path,
// parameter, body and response against it at compile time. Registers, logs in, creates a post,
// publishes and reads it, shows a typed error, and follows the post's events over SSE.
//
// Run (from clients/examples/node, after `npm ci && npm run gen:rest && npm run build`):
//   node dist/rest/main.js http://127.0.0.1:8080
import createClient from "openapi-fetch";
import type { paths } from "../gen/rest.js";

const base = (process.argv[2] ?? "http://127.0.0.1:8080").replace(/\/$/, "");
const api = createClient<paths>({ baseUrl: base });

/** The data of a successful call, or an Error naming the envelope's code and message. */
function ok<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.data === undefined) {
    const e = result.error as { error?: { code: string; message: string } } | undefined;
    throw new Error(`HTTP ${result.response.status}: ${e?.error?.code} ${e?.error?.message}`);
  }
  return result.data;
}

const email = `rest-${Date.now()}@example.com`;
const password = "correct horse battery";
const me = ok(await api.POST("/api/v1/users", { body: { email, name: "Ada", password } }));
const tokens = ok(await api.POST("/api/v1/auth/login", { body: { email, password } }));
const auth = { authorization: `Bearer ${tokens.access_token}` };
console.log(`registered ${me.id} (${me.role}); token expires in ${tokens.expires_in} s`);

const post = ok(
  await api.POST("/api/v1/posts", {
    headers: auth,
    body: { title: "Hello from openapi-fetch", body: "Typed end to end.", tags: ["typed"] },
  }),
);
console.log(`created ${post.id}: ${post.status} v${post.version}`);
const published = ok(await api.POST("/api/v1/posts/{id}/publish", { headers: auth, params: { path: { id: post.id } } }));
const read = ok(await api.GET("/api/v1/posts/{id}", { params: { path: { id: post.id } } }));
console.log(`published v${published.version}; anyone reads "${read.title}" (${read.status})`);

// Errors come in one envelope, typed from the document too.
const invalid = await api.POST("/api/v1/posts", { headers: auth, body: { title: "" } });
const issues = invalid.error?.error.details.map((d) => `${d.field}/${d.issue}`).join(", ");
console.log(`empty title: HTTP ${invalid.response.status} ${invalid.error?.error.code} (${issues})`);
if (invalid.response.status !== 422) throw new Error("an empty title must answer 422");

// Events: a stream token (EventSource cannot send headers), then the SSE stream of this post
// from the start of the log: post.created, then post.published.
const stream = ok(await api.POST("/api/v1/events/token", { headers: auth }));
const controller = new AbortController();
const timer = setTimeout(() => controller.abort(), 10_000);
const url = `${base}/api/v1/events?topics=posts/${post.id}&after=0&access_token=${encodeURIComponent(stream.token)}`;
const sse = await fetch(url, { signal: controller.signal });
const reader = sse.body!.pipeThrough(new TextDecoderStream()).getReader();
let buffered = "";
const seen: string[] = [];
while (!seen.includes("post.published")) {
  const { value, done } = await reader.read();
  if (done) break;
  buffered += value;
  let end;
  while ((end = buffered.indexOf("\n\n")) >= 0) {
    const frame = buffered.slice(0, end);
    buffered = buffered.slice(end + 2);
    const id = /^id: ?(.*)$/m.exec(frame)?.[1];
    const type = /^event: ?(.*)$/m.exec(frame)?.[1];
    if (id && type) {
      seen.push(type);
      console.log(`event ${id}: ${type}`);
    }
  }
}
clearTimeout(timer);
controller.abort();
if (!seen.includes("post.published")) throw new Error(`no post.published event (seen: ${seen.join(", ")})`);
console.log("rest example: done");
