#!/usr/bin/env node
// Browser check: Debian's Chromium (driven by playwright-core, never a downloaded browser) loads
// clients/web/realtime.html from a tiny static server on 127.0.0.1, and the page's native
// EventSource and WebSocket subscribe to a live Polyport server on another origin. This script
// publishes posts through REST and asserts that the page listed every post.published event, once,
// over both transports.
//
//   node clients/node/chromium_realtime.mjs http://127.0.0.1:POLYPORT_PORT [PAGE_PORT]
//
// The page's origin is http://127.0.0.1:PAGE_PORT: start Polyport with
// POLYPORT_CORS_ORIGINS=http://127.0.0.1:PAGE_PORT (the WebSocket Origin check and CORS on the
// SSE stream both depend on it). PAGE_PORT 0 (default) picks a free port, useful only when the
// server allows that origin some other way.
// Env: CHROMIUM (default /usr/bin/chromium), CLIENT_TIMEOUT_MS (default 90000).

import { readFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { EXECUTABLE, ok, runInChromium } from "./chromium.mjs";

const BASE = (process.argv[2] || "http://127.0.0.1:8080").replace(/\/$/, "");
const PAGE_PORT = Number(process.argv[3] || 0);
const PAGE_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "web", "realtime.html");
const PASSWORD = "correct horse battery staple";
const POSTS = 5;

async function rest(method, p, body, token) {
    const headers = { "content-type": "application/json" };
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await fetch(`${BASE}/api/v1${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${p} -> HTTP ${res.status}: ${text}`);
    return text ? JSON.parse(text) : null;
}

function serveStatic(port) {
    return new Promise((resolve, reject) => {
        const server = http.createServer(async (req, res) => {
            if (req.url.split("?")[0] === "/realtime.html") {
                res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
                res.end(await readFile(PAGE_FILE));
            } else {
                res.writeHead(404, { "content-type": "text/plain" });
                res.end("not found");
            }
        });
        server.on("error", reject);
        server.listen(port, "127.0.0.1", () => resolve(server));
    });
}

await runInChromium("chromium_realtime.mjs", async (browser) => {
    const server = await serveStatic(PAGE_PORT);
    const origin = `http://127.0.0.1:${server.address().port}`;
    console.log(`Chromium (${EXECUTABLE}) page ${origin}/realtime.html -> ${BASE}`);

    const email = `browser-${Date.now()}@example.com`;
    const me = await rest("POST", "/users", { email, name: "Browser", password: PASSWORD });
    const { access_token: token } = await rest("POST", "/auth/login", { email, password: PASSWORD });

    const page = await browser.newPage();
    const consoleLines = [];
    page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => consoleLines.push(`pageerror: ${e}`));
    const url = `${origin}/realtime.html?base=${encodeURIComponent(BASE)}&token=${encodeURIComponent(token)}`;
    await page.goto(url);

    try {
        await page.waitForFunction(() => window.realtimeResults && window.realtimeResults.sseOpen && window.realtimeResults.wsSubscribed, null, { timeout: 15_000 });
    } catch (e) {
        const r = await page.evaluate(() => window.realtimeResults);
        throw new Error(`page did not connect: ${JSON.stringify(r)}\n${consoleLines.join("\n")}`);
    }
    ok(true, "native EventSource open and WebSocket subscribed (cross-origin page)");
    ok((await page.evaluate(() => window.realtimeResults.wsUser)) === me.id, "WebSocket `auth` frame accepted for the page's user");

    const ids = [];
    for (let i = 1; i <= POSTS; i++) {
        const p = await rest("POST", "/posts", { title: `browser ${i}`, body: "seen by Chromium", tags: [] }, token);
        await rest("POST", `/posts/${p.id}/publish`, undefined, token);
        ids.push(p.id);
    }
    try {
        await page.waitForFunction(
            (n) => document.querySelectorAll("#sse-events li").length >= n && document.querySelectorAll("#ws-events li").length >= n,
            POSTS,
            { timeout: 15_000 },
        );
    } catch (e) {
        const r = await page.evaluate(() => window.realtimeResults);
        throw new Error(`page did not list ${POSTS} events on both: ${JSON.stringify(r)}\n${consoleLines.join("\n")}`);
    }
    await page.waitForTimeout(500); // late duplicates would show up now
    const dom = await page.$$eval("li", (lis) => lis.map((li) => ({ kind: li.dataset.kind, post: li.dataset.post, id: Number(li.dataset.eventId) })));
    const results = await page.evaluate(() => window.realtimeResults);
    for (const kind of ["sse", "ws"]) {
        const mine = dom.filter((d) => d.kind === kind && ids.includes(d.post));
        ok(JSON.stringify(mine.map((d) => d.post)) === JSON.stringify(ids), `${kind}: the page listed the ${POSTS} published posts in order, once each`);
        const evIds = mine.map((d) => d.id);
        ok(evIds.every((v, i) => i === 0 || v > evIds[i - 1]), `${kind}: event ids increase`);
    }
    ok(results.pong === true, "WebSocket ping answered with pong");
    ok(results.errors.length === 0, `no errors on the page (${JSON.stringify(results.errors)})`);
    await page.evaluate(() => window.realtimeClose());
    server.close();
});
