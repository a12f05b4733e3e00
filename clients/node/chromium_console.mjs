#!/usr/bin/env node
// Browser check of the console at `/`: Debian's Chromium (driven by playwright-core, never a
// downloaded browser) opens the page served by Polyport, registers and signs in, then runs
// create, update, publish, get, list and delete over REST, GraphQL, gRPC-Web, SOAP and /ws from
// the page; tries an empty title on each (each protocol's own error shape); and checks that the
// four live panes (SSE, /ws, GraphQL subscription, gRPC-Web stream) each showed every event of
// those posts with the same event ids. Every request and WebSocket the page opens must go to the
// page's own origin; the page must raise no error (a CSP refusal included). A screenshot is
// saved.
//
//   node clients/node/chromium_console.mjs http://127.0.0.1:PORT [SCREENSHOT_PATH]
//
// Env: CHROMIUM (default /usr/bin/chromium), CLIENT_TIMEOUT_MS (default 90000).

import { mkdirSync } from "node:fs";
import path from "node:path";
import { EXECUTABLE, ok, runInChromium } from "./chromium.mjs";

const BASE = (process.argv[2] || "http://127.0.0.1:8080").replace(/\/$/, "");
const SHOT = process.argv[3] || ".build/console/console.png";
const PROTOCOLS = ["rest", "graphql", "grpcweb", "soap", "ws"];
const OPERATIONS = ["create", "update", "publish", "get", "list", "delete"];
const LIFE = ["post.created", "post.updated", "post.published", "post.deleted"];
const PANES = ["sse", "ws", "graphql", "grpcweb"];
const ERROR_SHAPE = {
    rest: /^HTTP\/1\.1 422[\s\S]*"error":\{"code":"VALIDATION_FAILED"/,
    graphql: /"errors":\[\{[\s\S]*"extensions":\{[\s\S]*"code":"VALIDATION_FAILED"/,
    grpcweb: /grpc-status: ?3[\s\S]*"reason": "VALIDATION_FAILED"/,
    soap: /Fault>[\s\S]*VALIDATION_FAILED/,
    ws: /^<- (?=.*"type":"error")(?=.*"code":"VALIDATION_FAILED")(?=.*"request_id":")/m,
};

await runInChromium("chromium_console.mjs", async (browser) => {
    const origin = new URL(BASE).origin;
    const context = await browser.newContext({ viewport: { width: 1500, height: 1100 } });
    const foreign = [];
    const seen = new Set();
    // Every request the page makes (documents, scripts, fetch, EventSource) and every WebSocket.
    await context.route("**/*", (route) => {
        const url = route.request().url();
        seen.add(new URL(url).pathname);
        if (new URL(url).origin !== origin) {
            foreign.push(url);
            return route.abort();
        }
        return route.continue();
    });
    const page = await context.newPage();
    const problems = [];
    const sockets = [];
    page.on("websocket", (ws) => {
        sockets.push(ws.url());
        const u = new URL(ws.url());
        if (u.host !== new URL(BASE).host) foreign.push(ws.url());
    });
    page.on("pageerror", (e) => problems.push(`pageerror: ${e}`));
    page.on("console", (m) => {
        // Chromium logs an error answer as a failed resource: a 4xx is expected here, and so is
        // a SOAP 1.1 fault, which travels as HTTP 500.
        const text = m.text();
        const expected = /status of 4\d\d/.test(text) || (/status of 500/.test(text) && (m.location()?.url || "").endsWith("/soap"));
        if (m.type() === "error" && !expected) problems.push(`console: ${text} (${m.location()?.url})`);
    });
    console.log(`Chromium (${EXECUTABLE}) -> ${BASE}/`);
    await page.goto(`${BASE}/`);

    await page.click("#register");
    await page.waitForFunction(() => document.querySelector("#whoami").textContent.startsWith("registered"));
    await page.click("#login");
    await page.waitForSelector('#whoami[data-state="signed-in"]');
    ok(true, "registered and signed in from the page (REST)");
    for (const p of PANES) {
        await page.waitForSelector(`#pane-${p} .state[data-state="live"]`, { timeout: 15_000 });
    }
    ok(true, "all four live panes connected");

    const posts = {};
    const run = async (protocol, op, overrides) => {
        await page.selectOption("#protocol", protocol);
        const before = await page.evaluate(() => window.polyportConsole.history.length);
        if (overrides) await page.click("#empty-title");
        else {
            await page.selectOption("#operation", op);
            await page.click("#send");
        }
        await page.waitForFunction((n) => window.polyportConsole.history.length > n, before, { timeout: 15_000 });
        const outcome = await page.evaluate(() => window.polyportConsole.outcome);
        const wire = { request: await page.textContent("#wire-request"), response: await page.textContent("#wire-response") };
        return { outcome, wire };
    };
    for (const protocol of PROTOCOLS) {
        for (const op of OPERATIONS) {
            const { outcome, wire } = await run(protocol, op);
            if (!outcome.ok) throw new Error(`${protocol} ${op} failed: ${JSON.stringify(outcome)}\n${wire.request}\n---\n${wire.response}`);
            if (op === "create") posts[protocol] = outcome.postId;
            ok(wire.request.length > 0 && wire.response.length > 0, `${protocol} ${op}: ok, request and response shown`);
        }
        ok(typeof posts[protocol] === "string" && posts[protocol].length > 0, `${protocol}: created post ${posts[protocol]}`);
    }
    for (const protocol of PROTOCOLS) {
        const { outcome, wire } = await run(protocol, "create", { title: "" });
        ok(!outcome.ok && outcome.code === "VALIDATION_FAILED", `${protocol}: an empty title is VALIDATION_FAILED (${outcome.code})`);
        ok(ERROR_SHAPE[protocol].test(wire.response), `${protocol}: the error is shown in the protocol's own shape`);
    }

    const expected = Object.values(posts).length * LIFE.length;
    try {
        await page.waitForFunction(
            ({ panes, ids, life }) =>
                panes.every((p) => {
                    const items = Array.from(document.querySelectorAll(`#pane-${p} li`));
                    return ids.every((id) => life.every((t) => items.some((li) => li.dataset.post === id && li.dataset.type === t)));
                }),
            { panes: PANES, ids: Object.values(posts), life: LIFE },
            { timeout: 15_000 },
        );
    } catch (e) {
        const dump = await page.evaluate(() => document.querySelector("#live").innerText);
        throw new Error(`not every pane showed the ${expected} events: ${dump}`);
    }
    await page.waitForTimeout(300); // late duplicates would show up now
    const panes = await page.evaluate((names) => {
        const out = {};
        for (const p of names) {
            out[p] = Array.from(document.querySelectorAll(`#pane-${p} li`)).map((li) => ({ id: Number(li.dataset.eventId), type: li.dataset.type, post: li.dataset.post }));
        }
        return out;
    }, PANES);
    const ids = Object.values(posts);
    const mine = (p) => panes[p].filter((e) => ids.includes(e.post)).map((e) => e.id).sort((a, b) => a - b);
    for (const p of PANES) {
        ok(mine(p).length === expected, `${p}: ${expected} events of the ${ids.length} posts, once each`);
        ok(JSON.stringify(mine(p)) === JSON.stringify(mine("sse")), `${p}: the same event ids as SSE`);
        ok(mine(p).every((id) => Number.isInteger(id) && id > 0), `${p}: numeric event ids shown`);
    }

    ok(sockets.length >= 3 && sockets.every((u) => u.startsWith(origin.replace(/^http/, "ws"))), `WebSockets to this origin only (${sockets.length})`);
    ok(seen.has("/api/v1/events") && seen.has("/api/v1/events/token"), "SSE opened with a stream token");
    ok(foreign.length === 0, `no request left the origin (${JSON.stringify(foreign)})`);
    ok(problems.length === 0, `no page errors and no CSP refusals (${JSON.stringify(problems)})`);

    mkdirSync(path.dirname(SHOT), { recursive: true });
    await page.screenshot({ path: SHOT, fullPage: true });
    console.log(`  screenshot: ${SHOT}`);
    await context.close();
});
