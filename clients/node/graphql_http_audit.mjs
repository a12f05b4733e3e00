// The GraphQL-over-HTTP reference audits (npm graphql-http, serverAudits) against a live server.
// Every audit must pass: an error or a warning fails the run.
// Usage: node graphql_http_audit.mjs http://127.0.0.1:PORT
import { serverAudits } from "graphql-http";

const base = process.argv[2];
if (!base) {
  console.error("usage: node graphql_http_audit.mjs BASE_URL");
  process.exit(2);
}

const audits = serverAudits({ url: `${base}/graphql`, fetchFn: fetch });
let ok = 0;
const problems = [];
for (const audit of audits) {
  const result = await audit.fn();
  if (result.status === "ok") {
    ok += 1;
  } else {
    problems.push(`${result.status.toUpperCase()} ${audit.id} ${audit.name}: ${result.reason}`);
  }
}
console.log(`graphql-http serverAudits: ${ok} ok, ${problems.length} not ok`);
for (const p of problems) console.log(`  ${p}`);
process.exit(problems.length === 0 ? 0 : 1);
