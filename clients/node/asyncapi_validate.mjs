#!/usr/bin/env node
// Validates the AsyncAPI 3.0 document a live Polyport server serves at /api/v1/asyncapi.json
// with the AsyncAPI project's own parser (@asyncapi/parser, pinned in package.json): the
// document must parse with no diagnostic of severity error; warnings are printed.
//
//   node clients/node/asyncapi_validate.mjs http://127.0.0.1:PORT [OUT.json]

import { writeFileSync } from "node:fs";
import { DiagnosticSeverity, Parser } from "@asyncapi/parser";

const BASE = (process.argv[2] || "http://127.0.0.1:8080").replace(/\/$/, "");
const OUT = process.argv[3];

const res = await fetch(`${BASE}/api/v1/asyncapi.json`);
if (!res.ok) throw new Error(`GET /api/v1/asyncapi.json -> HTTP ${res.status}`);
const text = await res.text();
if (OUT) writeFileSync(OUT, text);

const { document, diagnostics } = await new Parser().parse(text);
const name = (s) => ({ [DiagnosticSeverity.Error]: "error", [DiagnosticSeverity.Warning]: "warning", [DiagnosticSeverity.Information]: "info", [DiagnosticSeverity.Hint]: "hint" })[s] || String(s);
for (const d of diagnostics) {
    console.log(`  ${name(d.severity)} ${d.code}: ${d.message} at ${JSON.stringify(d.path)}`);
}
const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
if (errors.length > 0 || !document) {
    console.error(`FAIL: the AsyncAPI document has ${errors.length} error(s)`);
    process.exit(1);
}
const channels = document.channels().all().map((c) => c.address());
const messages = document.components().messages().all().length;
const operations = document.operations().all().length;
console.log(`  ok: AsyncAPI ${document.version()} parsed: channels ${channels.join(", ")}; ${operations} operations; ${messages} messages`);
if (operations < 2 || !channels.includes("/api/v1/events") || !channels.includes("/ws")) {
    console.error("FAIL: the document lacks the SSE or /ws channel");
    process.exit(1);
}
console.log("asyncapi_validate.mjs: the AsyncAPI document is valid");
