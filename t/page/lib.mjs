// What every browser scenario of t/page.t shares: the reporting (one line of
// JSON per check, {"ok": bool, "name": "...", "diag": "..."}, which t/page.t
// turns into TAP), waits scaled by GH_SLOW, the API as grasshopper uses it,
// and a headless Chromium with a page that records console errors.
//
// A scenario is a file t/page/NAME.mjs that imports from here and ends with
// `await finish(main)`; t/page.t runs every one of them against one stack.
//
// Environment: GH_URL (the stack's nginx), GH_ARTIFACTS (where screenshots
// go), GH_NODE_MODULES (where playwright-core is), GH_CHROMIUM (the browser,
// /usr/bin/chromium), GH_SLOW (the stack's slow factor).

import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

export const URL_ = process.env.GH_URL;
export const ARTIFACTS = process.env.GH_ARTIFACTS;
const MODULES = process.env.GH_NODE_MODULES;
const CHROMIUM = process.env.GH_CHROMIUM || "/usr/bin/chromium";

const { chromium } = await import(
	pathToFileURL(join(MODULES, "playwright-core", "index.mjs")).href);

// ---- reporting -------------------------------------------------------------

let failures = 0;
export function check(name, ok, diag = "") {
	if (!ok) failures++;
	process.stdout.write(`${JSON.stringify({ ok: !!ok, name, diag: ok ? "" : String(diag) })}\n`);
	return !!ok;
}
export const is = (got, want, name) =>
	check(name, got === want, `got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);

// Every wait is scaled by GH_SLOW, the stack's slow factor ($s->slow, larger
// when the tracker runs under valgrind), as the Perl tests scale theirs.
export const SLOW = Number(process.env.GH_SLOW) > 1 ? Number(process.env.GH_SLOW) : 1;

// Wait until fn() (async) returns a truthy value; return it, or the last
// value after `ms` (times SLOW).
export async function until(fn, ms = 10000, step = 100) {
	ms *= SLOW;
	const end = Date.now() + ms;
	let v;
	for (;;) {
		v = await fn();
		if (v || Date.now() > end) return v;
		await new Promise((r) => setTimeout(r, step));
	}
}

// ---- the API, as grasshopper would use it ------------------------------------

// One request; the parsed answer, or an exception naming the status.
export async function api(token, method, path, body) {
	const r = await fetch(`${URL_}/api/v1/${path}`, {
		method,
		headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	const json = r.status === 204 ? null : await r.json();
	if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(json)}`);
	return json;
}

// The status the API answers `token` (a revoked one: 401).
export async function apiStatus(token, method, path, body) {
	const r = await fetch(`${URL_}/api/v1/${path}`, {
		method,
		headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	await r.arrayBuffer();
	return r.status;
}

// Log in as another browser would: {status, token}.
export async function logIn(username, password) {
	const r = await fetch(`${URL_}/api/v1/auth`, {
		method: "POST",
		headers: { "Content-Type": "application/json" },
		body: JSON.stringify({ username, password }),
	});
	const json = await r.json();
	return { status: r.status, token: json.token };
}

// A new user signed up through the API: {user, password, token}.
export async function newUser(prefix) {
	const user = `${prefix}_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
	const password = "correct horse 42";
	const r = await fetch(`${URL_}/api/v1/users`, {
		method: "POST",
		headers: { "Content-Type": "application/json" },
		body: JSON.stringify({ username: user, password }),
	});
	await r.arrayBuffer();
	if (r.status !== 201) throw new Error(`POST users: ${r.status}`);
	const { token } = await logIn(user, password);
	return { user, password, token };
}

export const iso = (ms) => new Date(ms).toISOString();

// ---- the browser -------------------------------------------------------------

// Chromium with one page: {browser, context, page, consoleErrors, shot,
// visible, text}. consoleErrors collects what the page logs as an error, CSP
// refusals included; a fetch the API answers 4xx is logged by Chromium as
// "Failed to load resource": that is the page doing its job.
export async function launch({ viewport = { width: 1280, height: 900 }, colorScheme } = {}) {
	const browser = await chromium.launch({
		executablePath: CHROMIUM,
		headless: true,
		// As root in a container, without a network beyond loopback.
		args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update",
			"--disable-sync"],
	});
	const context = await browser.newContext({
		viewport,
		acceptDownloads: true,
		locale: "en-US",
		timezoneId: "UTC",
		...(colorScheme ? { colorScheme } : {}),
	});
	await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: URL_ });
	const page = await context.newPage();
	page.setDefaultTimeout(15000 * SLOW);

	const consoleErrors = [];
	page.on("console", (m) => {
		if (m.type() === "error" && !/Failed to load resource/.test(m.text())) {
			consoleErrors.push(m.text());
		}
	});
	page.on("pageerror", (e) => consoleErrors.push(`uncaught: ${e.message}`));

	await mkdir(ARTIFACTS, { recursive: true });
	const shot = (name, fullPage = true) =>
		page.screenshot({ path: join(ARTIFACTS, name), fullPage });
	const visible = (sel) => page.locator(sel).isVisible();
	const text = async (sel) => (await page.locator(sel).textContent())?.trim() ?? "";
	return { browser, context, page, consoleErrors, shot, visible, text };
}

// Log `page` in through the page's own form; resolves when the list shows.
export async function logInPage(page, user, password) {
	await page.goto(`${URL_}/`);
	await page.locator("#login-form").waitFor();
	await page.fill("#login-username", user);
	await page.fill("#login-password", password);
	await page.click("#login-form button[type=submit]");
	await page.locator("#view-home").waitFor();
}

// Run a scenario's main(b) with b = launch()'s browser, report an exception
// as a failed check (with a screenshot NAME-failure.png), close the browser,
// and exit 1 when any check failed.
export async function finish(name, main, options) {
	const b = await launch(options);
	let status = 0;
	try {
		await main(b);
	} catch (e) {
		check(`${name}: the browser session ran to its end`, false, e.stack || e);
		await b.shot(`page-${name}-failure.png`).catch(() => {});
		status = 1;
	} finally {
		await b.browser.close();
	}
	process.exit(failures || status ? 1 : 0);
}
