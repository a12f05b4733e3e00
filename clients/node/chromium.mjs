// Shared by the browser checks: Debian's Chromium driven by playwright-core (never a downloaded
// browser), a watchdog, and one way to end: exit 0 when the check passed, 1 with the error.
// Env: CHROMIUM (default /usr/bin/chromium), CLIENT_TIMEOUT_MS (default 90000).

import { chromium } from "playwright-core";

export const EXECUTABLE = process.env.CHROMIUM || "/usr/bin/chromium";
const TIMEOUT_MS = Number(process.env.CLIENT_TIMEOUT_MS || 90_000);

export function ok(cond, what) {
    if (!cond) throw new Error(`check failed: ${what}`);
    console.log(`  ok: ${what}`);
}

/** Runs `check(browser)` in headless Chromium; exits the process with its outcome. */
export async function runInChromium(name, check) {
    const watchdog = setTimeout(() => {
        console.error(`FAIL: timed out after ${TIMEOUT_MS} ms`);
        process.exit(1);
    }, TIMEOUT_MS);
    let browser;
    try {
        browser = await chromium.launch({
            executablePath: EXECUTABLE,
            args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
        await check(browser);
        console.log(`${name}: all checks passed`);
        clearTimeout(watchdog);
        await browser.close();
        process.exit(0);
    } catch (err) {
        console.error(`FAIL: ${err.stack || err}`);
        try {
            if (browser) await browser.close();
        } catch {
            /* ignore */
        }
        process.exit(1);
    }
}
