#!/usr/bin/env node
// Browser check: Debian's Chromium (driven by playwright-core) opens GraphiQL at /graphql with
// every request to another origin blocked, so the page must run from the assets vendored in the
// server. GraphiQL must render, fetch the schema by introspection, and run a query typed into
// its editor, showing the server's answer.
//
//   node clients/node/chromium_graphiql.mjs http://127.0.0.1:POLYPORT_PORT
//
// The server must have GraphiQL on (the default in development).
// Env: CHROMIUM, CLIENT_TIMEOUT_MS (see chromium.mjs).

import { ok, runInChromium } from "./chromium.mjs";

const BASE = (process.argv[2] || "http://127.0.0.1:8080").replace(/\/$/, "");
const QUERY = "{ posts(first: 1) { pageInfo { hasNextPage } } }";

await runInChromium("chromium_graphiql.mjs", async (browser) => {
    const page = await browser.newPage();
    const foreign = [];
    const consoleLines = [];
    await page.route("**/*", (route) => {
        const url = route.request().url();
        if (url.startsWith(`${BASE}/`) || url.startsWith("data:")) return route.continue();
        foreign.push(url);
        return route.abort();
    });
    page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => consoleLines.push(`pageerror: ${e}`));
    // GraphiQL opens with the query it last kept in localStorage: start with ours.
    await page.addInitScript((q) => localStorage.setItem("graphiql:query", q), QUERY);

    const introspection = page.waitForResponse(
        (r) => r.url() === `${BASE}/graphql` && r.request().method() === "POST" && (r.request().postData() || "").includes("__schema"),
        { timeout: 20_000 },
    );
    const response = await page.goto(`${BASE}/graphql`);
    ok(response.status() === 200, `GET /graphql answers the GraphiQL page (${response.status()})`);
    try {
        await page.waitForSelector(".graphiql-container", { timeout: 20_000 });
    } catch (e) {
        throw new Error(`GraphiQL did not render\n${consoleLines.join("\n")}`);
    }
    ok(true, "GraphiQL rendered from /graphql/assets/");
    ok((await introspection).status() === 200, "GraphiQL fetched the schema by introspection");

    const run = page.waitForResponse(
        (r) => r.url() === `${BASE}/graphql` && r.request().method() === "POST" && (r.request().postData() || "").includes("hasNextPage"),
        { timeout: 20_000 },
    );
    await page.click(".graphiql-execute-button");
    ok((await run).status() === 200, "the execute button ran the editor's query");
    await page.waitForFunction(() => (document.querySelector(".graphiql-response")?.textContent || "").includes("hasNextPage"), null, {
        timeout: 20_000,
    });
    ok(true, "the result pane shows the server's answer");
    ok(foreign.length === 0, `no request left the server's origin (${JSON.stringify(foreign)})`);
    const errors = consoleLines.filter((l) => l.startsWith("pageerror") || l.startsWith("error"));
    ok(errors.length === 0, `no errors on the page (${JSON.stringify(errors)})`);
});
