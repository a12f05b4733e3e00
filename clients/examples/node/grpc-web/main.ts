// A gRPC-Web client in Node with Connect (@connectrpc/connect-web over fetch, HTTP/1.1, the way
// a browser talks to the server). Stubs are generated from proto/ by protoc-gen-es
// (`npm run gen:grpc`). Registers, logs in, creates a post, reads it, publishes it and receives
// its events from the EventService/Subscribe server stream.
//
// Run (from clients/examples/node, after `npm ci && npm run gen:grpc && npm run build`):
//   node dist/grpc-web/main.js http://127.0.0.1:8080
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { AuthService } from "../gen/grpc/polyport/v1/auth_pb.js";
import { EventService } from "../gen/grpc/polyport/v1/events_pb.js";
import { PostService } from "../gen/grpc/polyport/v1/posts_pb.js";
import { UserService } from "../gen/grpc/polyport/v1/users_pb.js";

const base = (process.argv[2] ?? "http://127.0.0.1:8080").replace(/\/$/, "");
// fetch underneath: HTTP/1.1, as in a browser.
const transport = createGrpcWebTransport({ baseUrl: base });
const users = createClient(UserService, transport);
const auth = createClient(AuthService, transport);
const posts = createClient(PostService, transport);
const events = createClient(EventService, transport);

const email = `grpcweb-${Date.now()}@example.com`;
const password = "correct horse battery";
const me = await users.register({ email, name: "Linus", password });
const tokens = await auth.login({ email, password });
const headers = { authorization: `Bearer ${tokens.accessToken}` };
console.log(`registered ${me.id}, logged in (${tokens.tokenType})`);

const post = await posts.createPost({ title: "Hello from gRPC-Web", body: "Over fetch.", tags: ["grpc"] }, { headers });
const read = await posts.getPost({ id: post.id }, { headers });
console.log(`created ${post.id}: ${post.status}; read back "${read.title}"`);

// Errors carry a gRPC code (and google.rpc.ErrorInfo with our code in the details).
try {
  await posts.getPost({ id: post.id }); // anonymous: a draft is invisible
  throw new Error("an anonymous read of a draft must fail");
} catch (e) {
  const err = ConnectError.from(e);
  if (err.code !== Code.NotFound) throw e;
  console.log(`anonymous GetPost of a draft: ${Code[err.code]}`);
}

// A server stream: this post's events from the start of the log, then live.
const controller = new AbortController();
const timer = setTimeout(() => controller.abort(), 10_000);
let publishedAsked = false;
for await (const event of events.subscribe(
  { topics: [`posts/${post.id}`], afterEventId: 0n },
  { headers, signal: controller.signal },
)) {
  console.log(`event ${event.id}: ${event.type} on ${event.topic}`);
  if (event.type === "post.created" && !publishedAsked) {
    publishedAsked = true;
    await posts.publishPost({ id: post.id }, { headers });
  }
  if (event.type === "post.published") break;
}
clearTimeout(timer);
controller.abort(); // ends the server stream's request
if (!publishedAsked) throw new Error("no events arrived");
console.log("grpc-web example: done");
