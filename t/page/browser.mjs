// The web page in headless Chromium, driven by playwright-core: what a person
// does, from signing up to downloading a run's samples, then managing named
// tokens, changing the password and logging out everywhere. Run by t/page.t
// against a private stack; every check is printed as one line of JSON,
// {"ok": bool, "name": "...", "diag": "..."}, which t/page.t turns into TAP.
//
// Environment: GH_OTHER_RUN (a run of another user), and lib.mjs's.

import { readFile } from "node:fs/promises";
import {
	URL_, check, is, until, api, apiStatus, logIn, iso, finish,
} from "./lib.mjs";

const OTHER_RUN = process.env.GH_OTHER_RUN;

// The run whose numbers the page must show: 40 samples half a second apart,
// the last one after a shorter interval, as grasshopper sends when the command
// ends; threshold 0.5. A sample above it counts its whole interval, the
// first one's from the start (SPEC 2).
const THRESHOLD = 0.5;
const VALUES = Array.from({ length: 40 }, (_, i) => {
	const v = 0.5 + 0.42 * Math.sin((i / 40) * 4 * Math.PI + 0.3) + ((i * 7) % 5) * 0.01;
	return Math.round(Math.min(1, Math.max(0, v)) * 1000) / 1000;
});
const OFFSETS_MS = VALUES.map((_, i) => (i < VALUES.length - 1 ? (i + 1) * 500 : 20200));
const DURATION = 20.2;
const ABOVE = VALUES.reduce((sum, v, i) =>
	sum + (v > THRESHOLD ? OFFSETS_MS[i] - (i ? OFFSETS_MS[i - 1] : 0) : 0), 0) / 1000;

// How the page writes seconds and shares (under a minute).
const secs = (s) => `${Math.round(s * 10) / 10} s`;
const pct = (f) => `${Math.round(f * 100)}%`;

// ---- the browser -------------------------------------------------------------

let page, context, consoleErrors, shot, visible, text;
const clipboard = () => page.evaluate(() => navigator.clipboard.readText());
// Whether `secret` is anywhere in the page: its markup, a field's value, storage.
const pageHolds = (secret) => page.evaluate((s) =>
	document.documentElement.outerHTML.includes(s) ||
	[...document.querySelectorAll("input, textarea")].some((f) => f.value.includes(s)) ||
	JSON.stringify(sessionStorage).includes(s) || JSON.stringify(localStorage).includes(s),
secret);

const user = `ann_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
const password = "correct horse 42";

async function main(b) {
	({ page, context, consoleErrors, shot, visible, text } = b);
	// ---- sign up ----------------------------------------------------------------
	await page.goto(`${URL_}/`);
	await page.locator("#view-welcome").waitFor();
	check("logged out: the log-in and sign-up forms are shown",
		await visible("#login-form") && await visible("#signup-form"));
	check("the vendored uPlot is served and loaded",
		await page.evaluate(() => typeof window.uPlot === "function"));
	await shot("page-welcome.png");

	await page.fill("#signup-username", user);
	await page.fill("#signup-password", password);
	await page.fill("#signup-confirm", `${password}!`);
	await page.click("#signup-form button[type=submit]");
	check("sign up: a different confirmation is shown beside the confirmation field",
		/differ/.test(await text("#signup-confirm-error")), await text("#signup-confirm-error"));

	await page.fill("#signup-confirm", password);
	await page.fill("#signup-email", `${user}@example.org`);
	await page.click("#signup-form button[type=submit]");
	await page.locator("#view-home").waitFor();
	check("sign up: the new account is logged in, its token shown",
		await visible("#token-text") && (await page.inputValue("#token-text")).split(".").length === 3);

	await page.click("#logout");
	await page.locator("#view-welcome").waitFor();
	check("log out: back to the forms", await visible("#login-form"));

	// ---- a taken username -------------------------------------------------------
	await page.fill("#signup-username", user.toUpperCase());
	await page.fill("#signup-password", password);
	await page.fill("#signup-confirm", password);
	await page.click("#signup-form button[type=submit]");
	await page.locator("#signup-username-error:not(:empty)").waitFor();
	const taken = await text("#signup-username-error");
	check("sign up with a taken username: the API's message beside the username field",
		/already taken/.test(taken), taken);
	is(await page.getAttribute("#signup-username", "aria-invalid"), "true",
		"the username field is marked invalid");
	check("a taken username logs nobody in", await visible("#view-welcome"));
	await shot("page-signup-error.png", false);

	// ---- log in, with the keyboard ----------------------------------------------
	await page.focus("#login-username");
	await page.keyboard.type(user);
	await page.keyboard.press("Tab");
	await page.keyboard.type(password);
	await page.keyboard.press("Enter");
	await page.locator("#view-home").waitFor();
	const token = await page.inputValue("#token-text");
	check("log in: the token is shown", token.split(".").length === 3, token);
	check("log in: the token panel is open", await page.locator("#token-panel").evaluate((d) => d.open));
	check("the token's expiry is shown", /\d/.test(await text("#token-expiry")));
	is(await page.inputValue("#command-text"),
		`grasshopper login --server ${URL_}\ngrasshopper -- make test`,
		"the ready-to-paste commands log in to this server, then run");
	is(await page.inputValue("#ci-text"), `grasshopper --server ${URL_} -- make test`,
		"the CI command names this server");
	check("the GRASSHOPPER_JWT secret variable is how CI gets its token",
		/GRASSHOPPER_JWT/.test(await text("#ci-hint")), await text("#ci-hint"));
	const commands = `${await page.inputValue("#command-text")}\n${await page.inputValue("#ci-text")}`;
	check("no command line holds the token (shell history, ps)",
		!commands.includes(token) && !commands.includes(token.split(".")[2]) &&
		!/eyJ|JWT=/.test(commands), commands);
	is(await text("#account-user"), user, "the header names the user");
	await shot("page-token.png", false);
	const storage = await page.evaluate(() => ({
		session: sessionStorage.getItem("grasshopper.session") ?? "",
		local: localStorage.length,
		cookie: document.cookie,
	}));
	check("the token is in sessionStorage only (no localStorage, no cookie)",
		storage.session.includes(token) && storage.local === 0 && storage.cookie === "",
		JSON.stringify(storage));

	// ---- copy -------------------------------------------------------------------
	await page.click("button[data-copy=token-text]");
	await until(async () => /copied/i.test(await text("#copy-status")), 5000);
	is(await clipboard(), token, "Copy token puts the token on the clipboard");
	await page.click("button[data-copy=command-text]");
	await until(async () => /Commands copied/.test(await text("#copy-status")), 5000);
	is(await clipboard(), await page.inputValue("#command-text"),
		"Copy commands puts the commands on the clipboard");
	check("…and no token", !(await clipboard()).includes(token));

	// ---- runs, made through the API with the page's token ----------------------
	const now = Date.now();
	for (let i = 0; i < 21; i++) {
		const t = await api(token, "POST", "test", {
			name: `filler-${i}`, start_time: iso(now - 86400e3 + i * 60e3) });
		await api(token, "POST", `test/${t.id}/stop`, { end_time: iso(now - 86400e3 + i * 60e3 + 5e3) });
	}
	const start = Math.floor(now / 1000) * 1000 - 3600e3;
	const made = await api(token, "POST", "test", {
		name: "make", description: "test -j2", threshold: THRESHOLD, start_time: iso(start) });
	const runA = made.id;
	await api(token, "POST", `test/${runA}/usage`,
		VALUES.map((v, i) => ({ cpu_usage: v, timestamp: iso(start + OFFSETS_MS[i]) })));
	const stopped = await api(token, "POST", `test/${runA}/stop`, { end_time: iso(start + DURATION * 1000) });
	check("the API agrees with the test's arithmetic (duration, time above threshold)",
		Math.abs(stopped.duration - DURATION) < 1e-9 &&
		Math.abs(stopped.time_above_threshold - ABOVE) < 1e-9,
		JSON.stringify(stopped));

	const bStart = now - 90e3;
	const runB = (await api(token, "POST", "test", { name: "monitor", start_time: iso(bStart) })).id;
	await api(token, "POST", `test/${runB}/usage`,
		[0.2, 0.4, 0.3].map((v, i) => ({ cpu_usage: v, timestamp: iso(bStart + (i + 1) * 1000) })));

	// ---- the list ---------------------------------------------------------------
	await page.reload();
	await page.locator("#runs-body tr").first().waitFor();
	const ids = await page.locator("#runs-body tr").evaluateAll((rows) => rows.map((r) => Number(r.dataset.id)));
	is(ids.length, 20, "the list shows a page of 20 runs");
	check("newest first: the active run, then the finished one",
		ids[0] === runB && ids[1] === runA, JSON.stringify(ids.slice(0, 3)));
	check("the token is folded away when coming back", !(await page.locator("#token-panel").evaluate((d) => d.open)));
	const rowA = `#runs-body tr[data-id="${runA}"]`;
	const rowB = `#runs-body tr[data-id="${runB}"]`;
	is(await text(`${rowA} td.name a`), "make", "the run's name");
	is(await text(`${rowA} td.duration`), secs(DURATION), "the run's duration");
	is(await text(`${rowA} td.above`), `${secs(ABOVE)} (${pct(ABOVE / DURATION)})`,
		"time above threshold, in seconds and % of the duration");
	is(await text(`${rowA} td.peak`), pct(Math.max(...VALUES)), "peak CPU");
	is(await text(`${rowA} td.state`), "Finished", "a stopped run is finished");
	is(await text(`${rowB} td.state`), "Active", "a running one is active");
	check("the start is shown", /\d/.test(await text(`${rowA} td:nth-child(2)`)));
	await shot("page-list.png");

	// Active runs refresh on their own.
	await api(token, "POST", `test/${runB}/usage`, { cpu_usage: 0.99, timestamp: iso(bStart + 4000) });
	check("an active run's row refreshes by itself (peak CPU 99%)",
		await until(async () => (await text(`${rowB} td.peak`)) === "99%", 12000),
		await text(`${rowB} td.peak`));

	// Pages, with the API's before/next.
	await page.click("#runs-older");
	await until(async () => (await page.locator("#runs-body tr").count()) === 3);
	is(await page.locator("#runs-body tr").count(), 3, "Older: the last 3 of 23 runs");
	check("…the oldest of them last", await text("#runs-body tr:last-child td.name a") === "filler-0");
	check("…with a way back", await visible("#runs-newer") && !(await visible("#runs-older")));
	await page.click("#runs-newer");
	await until(async () => (await page.locator("#runs-body tr").count()) === 20);
	is(Number(await page.locator("#runs-body tr").first().getAttribute("data-id")), runB,
		"Newer: back to the first page");

	// ---- one run ------------------------------------------------------------------
	await page.click(`${rowA} td.name a`);
	await page.waitForURL(`**/#/test/${runA}`);
	await page.locator("#chart canvas").waitFor();
	check("the run has its own URL, /#/test/ID", page.url().endsWith(`/#/test/${runA}`), page.url());
	is(await text("#run-name"), "make", "run page: name");
	is(await text("#run-description"), "test -j2", "run page: description");
	is(await text("#run-duration"), secs(DURATION), "run page: duration");
	is(await text("#run-above"), `${secs(ABOVE)} (${pct(ABOVE / DURATION)})`, "run page: time above threshold");
	is(await text("#run-samples"), "40", "run page: sample count");
	is(await text("#run-threshold"), "50%", "run page: threshold");
	is(await text("#run-state"), "Finished", "run page: finished");

	const chart = await page.evaluate(() => {
		const box = document.getElementById("chart");
		return {
			points: Number(box.dataset.points),
			threshold: Number(box.dataset.threshold),
			above: Number(box.dataset.aboveSeconds),
			legend: [...box.querySelectorAll(".u-legend .u-series .u-label")].map((e) => e.textContent),
		};
	});
	is(chart.points, VALUES.length, "the chart has one point per sample");
	is(chart.threshold, THRESHOLD, "the chart's threshold");
	check("the chart's shaded time above threshold is the API's",
		Math.abs(chart.above - ABOVE) < 1e-6, chart.above);
	check("the legend names CPU and Threshold",
		chart.legend.includes("CPU") && chart.legend.includes("Threshold"), JSON.stringify(chart.legend));

	// Read the pixels: the threshold is a dashed red line across the plot at
	// 50%, and the intervals above it are shaded; the others are not.
	const pixels = await page.evaluate(({ duration, values, offsets }) => {
		const box = document.getElementById("chart");
		const canvas = box.querySelector("canvas");
		const over = box.querySelector(".u-over").getBoundingClientRect();
		const c = canvas.getBoundingClientRect();
		const k = canvas.width / c.width;
		const ctx = canvas.getContext("2d");
		const at = (x, y) => ctx.getImageData(Math.round((x - c.left) * k), Math.round((y - c.top) * k), 1, 1).data;
		const red = (p) => p[0] > 150 && p[1] < 110 && p[2] < 110;
		const yLine = c.top + Number(box.dataset.thresholdY);
		let onLine = 0;
		let offLine = 0;
		for (let x = over.left + 2; x < over.right - 2; x++) {
			if ([-1, 0, 1].some((d) => red(at(x, yLine + d)))) onLine++;
			if (red(at(x, over.top + over.height * 0.8))) offLine++;
		}
		// A point near the top of the plot, halfway through a sample's interval.
		const xOf = (ms) => over.left + (ms / 1000 / duration) * over.width;
		const shaded = (i) => {
			const p = at(xOf(((i ? offsets[i - 1] : 0) + offsets[i]) / 2), over.top + 4);
			return p[0] - p[2] > 8; // reddish against a white background
		};
		const wrong = values.map((v, i) => (shaded(i) !== (v > 0.5) ? i : -1)).filter((i) => i >= 0);
		return { width: over.width, onLine, offLine, wrong, yLine: yLine - over.top, h: over.height };
	}, { duration: DURATION, values: VALUES, offsets: OFFSETS_MS });
	check("the threshold line is drawn across the plot at 50%",
		pixels.onLine > pixels.width * 0.4 && Math.abs(pixels.yLine - pixels.h / 2) < 3,
		JSON.stringify(pixels));
	check("…and not elsewhere", pixels.offLine < pixels.width * 0.05, JSON.stringify(pixels));
	check("exactly the intervals above the threshold are shaded", pixels.wrong.length === 0,
		`samples shaded wrongly: ${pixels.wrong}`);
	await shot("page-run.png");

	// ---- CSV ------------------------------------------------------------------------
	const [download] = await Promise.all([page.waitForEvent("download"), page.click("#csv")]);
	is(download.suggestedFilename(), `grasshopper-run-${runA}.csv`, "CSV: the file's name");
	const csv = (await readFile(await download.path(), "utf8")).split("\r\n").filter((l) => l);
	is(csv[0], "timestamp,cpu_usage,above_threshold,mem_usage", "CSV: the header");
	is(csv.length - 1, VALUES.length, "CSV: one row per sample");
	const rows = csv.slice(1).map((l) => l.split(","));
	check("CSV: the samples as sent", rows.every(([ts, v, a], i) =>
		Date.parse(ts) === start + OFFSETS_MS[i] && Number(v) === VALUES[i] &&
		a === String(VALUES[i] > THRESHOLD)), csv.slice(0, 4).join(" | "));

	// ---- an active run, followed live ----------------------------------------------
	await page.goto(`${URL_}/#/test/${runB}`);
	await page.locator("#chart canvas").waitFor();
	is(await text("#run-state"), "Active", "an active run's page says so");
	check("…and says it updates live", await visible("#run-live"));
	const points = () => page.locator("#chart").evaluate((b) => Number(b.dataset.points));
	is(await points(), 4, "its chart has the samples so far");
	await api(token, "POST", `test/${runB}/usage`,
		[0.7, 0.8].map((v, i) => ({ cpu_usage: v, timestamp: iso(bStart + (5 + i) * 1000) })));
	check("new samples appear on the chart by themselves",
		await until(async () => (await points()) === 6, 10000), await points());
	await api(token, "POST", `test/${runB}/stop`, {});
	check("a run that stops turns finished by itself",
		await until(async () => (await text("#run-state")) === "Finished", 10000) &&
		!(await visible("#run-live")), await text("#run-state"));

	// ---- another user's run, and ids that are nobody's --------------------------------
	for (const id of [OTHER_RUN, "999999999", "abc"]) {
		await page.goto(`${URL_}/#/test/${id}`);
		await page.locator("#run-missing").waitFor();
		check(`#/test/${id}: "not found"`, /not found/i.test(await text("#missing-heading")) &&
			!(await visible("#run")));
	}
	check("another user's run shows nothing of it",
		!(await page.content()).includes("other-users-secret-run"));
	await shot("page-notfound.png", false);

	// ---- a phone -----------------------------------------------------------------------
	await page.setViewportSize({ width: 390, height: 844 });
	await page.goto(`${URL_}/#/`);
	await page.locator("#runs-body tr").first().waitFor();
	const overflow = () => page.evaluate(() => document.documentElement.scrollWidth);
	check("phone: the list fits the screen's width", (await overflow()) <= 390, await overflow());
	await shot("page-list-phone.png", false);
	await page.goto(`${URL_}/#/test/${runA}`);
	await page.locator("#chart canvas").waitFor();
	check("phone: the run page fits the screen's width", (await overflow()) <= 390, await overflow());
	check("phone: the chart fits too", await page.locator("#chart canvas").evaluate(
		(c) => c.getBoundingClientRect().right <= 390), "");
	await shot("page-run-phone.png");
	await page.setViewportSize({ width: 1280, height: 900 });

	// ---- dark -------------------------------------------------------------------------------
	await page.emulateMedia({ colorScheme: "dark" });
	await page.reload();
	await page.locator("#chart canvas").waitFor();
	check("dark: the page follows the system's colours", await page.evaluate(() =>
		getComputedStyle(document.body).backgroundColor !== "rgb(244, 246, 243)"));
	await shot("page-run-dark.png", false);
	await page.emulateMedia({ colorScheme: "light" });

	// ---- log out ---------------------------------------------------------------------------
	await page.click("#logout");
	await page.locator("#view-welcome").waitFor();
	is(await page.evaluate(() => sessionStorage.getItem("grasshopper.session")), null,
		"log out forgets the token");
	check("…and leaves it nowhere in the page, nor the runs' names",
		!(await pageHolds(token)) && !(await pageHolds("filler-1")));
	await page.goto(`${URL_}/#/test/${runA}`);
	await page.locator("#view-welcome").waitFor();
	check("after log out the run page asks to log in, and shows nothing of the run",
		await visible("#login-form") && !(await visible("#view-run")) &&
		/Log in to see run/.test(await text("#notice")), await text("#notice"));
	await page.fill("#login-username", user);
	await page.fill("#login-password", password);
	await page.click("#login-form button[type=submit]");
	await page.locator("#chart canvas").waitFor();
	is(await text("#run-name"), "make", "logging in again leads to the run asked for");

	// ---- named tokens -------------------------------------------------------------
	const session = () => page.evaluate(() =>
		JSON.parse(sessionStorage.getItem("grasshopper.session") ?? "null")?.token ?? null);
	const tokenRows = () => page.locator("#tokens-body tr").evaluateAll((trs) =>
		trs.map((r) => ({
			id: r.dataset.id,
			name: r.querySelector(".name").textContent,
			created: r.querySelector(".created-at").textContent,
			expires: r.querySelector(".expires").textContent,
			used: r.querySelector(".last-used").textContent,
		})));
	// The rows once there are n of them, read in the same step as counted: a
	// route change clears the table between two reads.
	const tokensShown = async (n) => (await until(async () => {
		const rows = await tokenRows();
		return rows.length === n && !(await visible("#tokens-empty")) === (n > 0) ? rows : null;
	})) ?? [];

	await page.click("#nav-tokens");
	await page.locator("#view-tokens").waitFor();
	await page.locator("#tokens-empty").waitFor();
	check("the header's Tokens link opens the tokens panel: no named tokens yet",
		page.url().endsWith("/#/tokens") && await visible("#tokens-empty") &&
		!(await visible("#tokens")), page.url());
	is(await page.getAttribute("#nav-tokens", "aria-current"), "page", "the header marks it as the current page");

	await page.click("#token-form button[type=submit]");
	check("a token without a name: said beside the name field",
		/name/.test(await text("#token-name-error")) &&
		await page.getAttribute("#token-name", "aria-invalid") === "true", await text("#token-name-error"));

	// With the keyboard: a name, a lifetime, Enter.
	await page.focus("#token-name");
	await page.keyboard.type("ci: github <actions>");
	await page.selectOption("#token-lifetime", "2592000");
	await page.focus("#token-name");
	await page.keyboard.press("Enter");
	await page.locator("#token-created").waitFor();
	const ci = await page.inputValue("#created-token");
	check("create: the new token is shown", ci.length >= 20 && ci !== (await session()), ci);
	check("…once, saying so", /you will not see it again/i.test(
		(await text("#token-created")).replace(/\s+/g, " ")), await text("#token-created"));
	is(await text("#created-name"), "ci: github <actions>", "…under its name, as text");
	is(await page.evaluate(() => document.activeElement.id), "created-heading",
		"…and focus moves to it (screen readers announce it)");
	let listed = await tokensShown(1);
	check("the list shows the new token: its name, never used, expires in 30 days",
		listed.length === 1 && listed[0].name === "ci: github <actions>" && listed[0].used === "never" &&
		listed[0].expires === "in 30 days" && /\d/.test(listed[0].created), JSON.stringify(listed));
	check("…but not the token itself", !(await text("#tokens")).includes(ci));
	is(await page.inputValue("#token-name"), "", "the form is ready for the next one");
	check("the named token is in no storage", !(await page.evaluate((s) =>
		JSON.stringify(sessionStorage).includes(s) || JSON.stringify(localStorage).includes(s) ||
		document.cookie.includes(s), ci)));
	await page.click("button[data-copy=created-token]");
	await until(async () => /copied/.test(await text("#created-status")), 5000);
	is(await clipboard(), ci, "Copy token puts the named token on the clipboard");
	await shot("page-tokens-created.png", false);

	is(await apiStatus(ci, "GET", "test?limit=1"), 200, "the named token works against the API");
	await page.click("#created-done");
	check("Done takes the token off the page", !(await visible("#token-created")) &&
		!(await pageHolds(ci)));
	is(await page.evaluate(() => document.activeElement.id), "token-name", "…and focus goes back to the name");

	// The use shows in the list (kept to the minute).
	await page.click("#view-tokens .back a");
	await page.locator("#view-home").waitFor();
	await page.click("#nav-tokens");
	// Until the route runs, the hidden panel still holds the rows of the last visit.
	await page.locator("#view-tokens").waitFor();
	listed = await tokensShown(1);
	check("after its use, the list says when it was last used",
		listed.length === 1 && listed[0].used !== "never" && /ago|now|minute/.test(listed[0].used), JSON.stringify(listed));

	// Leaving the panel forgets a token shown there.
	await page.fill("#token-name", "laptop");
	await page.click("#token-form button[type=submit]");
	await page.locator("#token-created").waitFor();
	const laptop = await page.inputValue("#created-token");
	await page.click("#view-tokens .back a");
	await page.locator("#view-home").waitFor();
	check("leaving the panel takes the token shown there off the page", !(await pageHolds(laptop)));
	await page.click("#nav-tokens");
	await page.locator("#view-tokens").waitFor();
	listed = await tokensShown(2);
	check("coming back: the list, newest first, and no token shown",
		listed.map((r) => r.name).join("|") === "laptop|ci: github <actions>" &&
		listed[0].expires === "in 90 days" && !(await visible("#token-created")) &&
		!(await pageHolds(laptop)), JSON.stringify(listed));

	// Revoke: asked first; Escape and Cancel keep it.
	const ciRow = `#tokens-body tr[data-id="${listed[1].id}"]`;
	await page.click(`${ciRow} button.revoke`);
	await page.locator("#confirm").waitFor();
	check("Revoke asks first, naming the token",
		/Revoke the token “ci: github <actions>”/.test(await text("#confirm-message")),
		await text("#confirm-message"));
	is(await page.evaluate(() => document.activeElement.id), "confirm-cancel",
		"…with focus on Cancel, the safe answer");
	await shot("page-tokens-confirm.png", false);
	await page.keyboard.press("Escape");
	await page.locator("#confirm").waitFor({ state: "hidden" });
	await page.click(`${ciRow} button.revoke`);
	await page.click("#confirm-cancel");
	await page.locator("#confirm").waitFor({ state: "hidden" });
	check("Escape and Cancel revoke nothing", (await page.locator("#tokens-body tr").count()) === 2 &&
		await apiStatus(ci, "GET", "test?limit=1") === 200);
	await page.click(`${ciRow} button.revoke`);
	await page.click("#confirm-ok");
	listed = await tokensShown(1);
	check("revoked: gone from the list, and said so",
		listed.length === 1 && listed[0].name === "laptop" && /Revoked/.test(await text("#tokens-status")),
		`${JSON.stringify(listed)} ${await text("#tokens-status")}`);
	is(await apiStatus(ci, "GET", "test?limit=1"), 401, "the revoked token: 401 from the API");
	is(await apiStatus(laptop, "GET", "test?limit=1"), 200, "the other named token still works");
	is(await apiStatus(await session(), "GET", "test?limit=1"), 200, "…and so does the page's own");
	await shot("page-tokens.png");

	// A phone, and dark.
	await page.setViewportSize({ width: 390, height: 844 });
	await page.reload();
	await tokensShown(1);
	// The table scrolls inside its box rather than the page's: that must not either.
	const tokensOverflow = () => page.evaluate(() => {
		const box = document.getElementById("tokens").parentElement;
		return Math.max(document.documentElement.scrollWidth, box.scrollWidth - box.clientWidth + 390);
	});
	check("phone: the tokens panel fits the screen's width", (await tokensOverflow()) <= 390,
		await tokensOverflow());
	await shot("page-tokens-phone.png");
	await page.setViewportSize({ width: 1280, height: 900 });
	await page.emulateMedia({ colorScheme: "dark" });
	await page.reload();
	await tokensShown(1);
	await page.fill("#token-name", "shown in the dark");
	await page.click("#token-form button[type=submit]");
	await page.locator("#token-created").waitFor();
	const dark = await page.inputValue("#created-token");
	await shot("page-tokens-dark.png", false);
	await page.click("#created-done");
	await page.emulateMedia({ colorScheme: "light" });

	// ---- change password ----------------------------------------------------------
	const newPassword = "battery staple 43";
	const sessionBefore = await session();
	const changePassword = async (current, next, repeat = next) => {
		await page.fill("#password-current", current);
		await page.fill("#password-new", next);
		await page.fill("#password-repeat", repeat);
		await page.click("#password-form button[type=submit]");
	};
	await changePassword(password, newPassword, `${newPassword}!`);
	check("change password: a different repetition is said beside it",
		/differ/.test(await text("#password-repeat-error")), await text("#password-repeat-error"));
	await changePassword(password, "short");
	check("…a new password too short, beside it",
		/8 characters/.test(await text("#password-new-error")), await text("#password-new-error"));
	// 600 characters the field takes, 1200 bytes the API refuses.
	await changePassword(password, "é".repeat(600));
	await page.locator("#password-new-error:not(:empty)").waitFor();
	is(await text("#password-new-error"), "The new password must be 8 to 1024 bytes long.",
		"…a new password the API refuses: its message beside the new password");
	await changePassword("not my password", newPassword);
	await page.locator("#password-current-error:not(:empty)").waitFor();
	check("…a wrong current password: the API's message beside that field",
		/password/i.test(await text("#password-current-error")) &&
		await page.getAttribute("#password-current", "aria-invalid") === "true",
		await text("#password-current-error"));
	is(await apiStatus(sessionBefore, "GET", "test?limit=1"), 200, "…and nothing is revoked");
	await shot("page-tokens-password-error.png", false);

	await changePassword(password, newPassword);
	await page.locator("#password-status:not(:empty)").waitFor();
	check("changed: the page says every other session and token stopped working",
		/every other session and every token/i.test(await text("#password-status")),
		await text("#password-status"));
	const sessionAfter = await session();
	check("…and this tab stays logged in, with a new token",
		await visible("#view-tokens") && sessionAfter && sessionAfter !== sessionBefore &&
		await apiStatus(sessionAfter, "GET", "test?limit=1") === 200, sessionAfter);
	check("the fields are emptied", (await page.inputValue("#password-current")) === "" &&
		(await page.inputValue("#password-new")) === "");
	is(await apiStatus(sessionBefore, "GET", "test?limit=1"), 401, "the page's earlier token: 401");
	is(await apiStatus(laptop, "GET", "test?limit=1"), 401, "a named token from before: 401");
	is(await apiStatus(dark, "GET", "test?limit=1"), 401, "…every one of them");
	is((await logIn(user, password)).status, 401, "the old password no longer logs in");
	is((await logIn(user, newPassword)).status, 200, "the new one does");
	check("the tokens list still loads", !(await visible("#tokens-error")), await text("#tokens-error"));

	// ---- the limit: 100 named tokens -------------------------------------------------
	const NAMED_MAX = 100;
	const have = (await api(sessionAfter, "GET", "tokens")).tokens.length;
	const longName = "x".repeat(64); // the longest, without a place to break
	await api(sessionAfter, "POST", "tokens", { name: longName });
	for (let i = have + 1; i < NAMED_MAX; i++) {
		await api(sessionAfter, "POST", "tokens", { name: `bulk-${i}`, expires_in: 60 });
	}
	await page.reload();
	await tokensShown(NAMED_MAX);
	await page.fill("#token-name", "one too many");
	await page.click("#token-form button[type=submit]");
	await page.locator("#token-form-error:not(:empty)").waitFor();
	check("the 101st token: the API's message under the form, no token shown",
		/100/.test(await text("#token-form-error")) && !(await visible("#token-created")),
		await text("#token-form-error"));
	is(await page.locator("#tokens-body tr").count(), NAMED_MAX, "…and the list still has 100");
	check("a token that expires within the hour says so", /^(within a minute|in [1-9] minutes?)$/.test(
		(await tokenRows())[0].expires), (await tokenRows())[0].expires);
	check("the longest name is shown whole", (await tokenRows()).some((r) => r.name === longName));
	check("phone: a hundred tokens, the longest name among them, fit the screen's width", await (async () => {
		await page.setViewportSize({ width: 390, height: 844 });
		const w = await tokensOverflow();
		await page.setViewportSize({ width: 1280, height: 900 });
		return w <= 390;
	})());

	// ---- log out everywhere ----------------------------------------------------------
	const elsewhere = (await logIn(user, newPassword)).token; // another browser
	const tab = await context.newPage(); // and another tab, a session of its own
	await tab.goto(`${URL_}/#/tokens`);
	await tab.fill("#login-username", user);
	await tab.fill("#login-password", newPassword);
	await tab.click("#login-form button[type=submit]");
	await tab.locator("#view-tokens").waitFor();
	const pageToken = await session();
	await page.click("#logout-everywhere");
	await page.locator("#confirm").waitFor();
	check("Log out everywhere asks first", /every token you have stops working/i.test(
		await text("#confirm-message")), await text("#confirm-message"));
	await page.click("#confirm-cancel");
	await page.locator("#confirm").waitFor({ state: "hidden" });
	check("Cancel: still logged in, other sessions too", await visible("#view-tokens") &&
		await apiStatus(elsewhere, "GET", "test?limit=1") === 200);
	await page.click("#logout-everywhere");
	await page.click("#confirm-ok");
	await page.locator("#view-welcome").waitFor();
	check("logged out everywhere: the page is logged out and says so",
		/logged out everywhere/.test(await text("#notice")) && (await session()) === null,
		await text("#notice"));
	is(await apiStatus(pageToken, "GET", "test?limit=1"), 401, "the page's token: 401");
	is(await apiStatus(elsewhere, "GET", "test?limit=1"), 401, "another browser's token: 401");
	await tab.click("#view-tokens .back a");
	await tab.locator("#view-welcome").waitFor();
	check("another tab: its next request logs it out, saying why",
		/has ended/.test(await tab.locator("#notice").textContent()) &&
		!(await tab.locator("#runs-body tr").count()), await tab.locator("#notice").textContent());
	await tab.close();
	await page.goto(`${URL_}/#/tokens`);
	await page.locator("#view-welcome").waitFor();
	check("logged out, #/tokens asks to log in", /Log in to manage your tokens/.test(await text("#notice")),
		await text("#notice"));
	await page.fill("#login-username", user);
	await page.fill("#login-password", newPassword);
	await page.click("#login-form button[type=submit]");
	await page.locator("#view-tokens").waitFor();
	check("logging in again (new password) leads to the tokens panel",
		await apiStatus(await session(), "GET", "test?limit=1") === 200);

	check("no errors in the console (CSP refusals included)", consoleErrors.length === 0,
		consoleErrors.join("\n"));
}

await finish("browser", main);
