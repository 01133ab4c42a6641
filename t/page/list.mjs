// The list's new parts (issues 13 and 14): each run's tags, filters by name
// and tag that live in the address, and two to five runs compared on one
// chart with their figures side by side. Its own user and runs, made through
// the API; every number the page shows is computed here from what was sent.
//
// Environment: GH_OTHER_RUN (a run of another user), and lib.mjs's.

import {
	URL_, check, is, until, api, newUser, logInPage, iso, finish,
} from "./lib.mjs";

const OTHER_RUN = process.env.GH_OTHER_RUN;
const HOSTILE = "<img src=x onerror=\"window.__pwned=1\">&amp;\u202e";
const COMMIT_A = "0123456789abcdef0123456789abcdef01234567";
const COMMIT_B = "fedcba9876543210fedcba9876543210fedcba98";

// How the page writes seconds, shares and sizes (app.js's fmtSeconds,
// fmtPercent, compareKiB), restated for the values used here.
const secs = (s) => (s < 60 ? `${Math.round(s * 10) / 10} s`
	: `${Math.floor(Math.round(s) / 60)} min ${String(Math.round(s) % 60).padStart(2, "0")} s`);
const pct = (f) => {
	const v = f * 100;
	return `${v > 0 && v < 10 ? v.toFixed(1) : Math.round(v)}%`;
};
const mib = (k) => `${(k / 1024).toFixed(1)} MiB`;

// A run made through the API: `n` samples `step` seconds apart, CPU from
// cpu(i), memory from mem(i) (undefined: none), stopped at `end` seconds
// with `command` (or left active when end is null). Returns what the page
// must show for it, computed here.
async function makeRun(token, { name, tags, start, n, step = 1, cpu, mem, end, command,
	threshold = 0.5 }) {
	const t = await api(token, "POST", "test", { name, tags, threshold, start_time: iso(start) });
	const samples = Array.from({ length: n }, (_, i) => {
		const s = { cpu_usage: cpu(i), timestamp: iso(start + (i + 1) * step * 1000) };
		if (mem && mem(i) !== undefined) s.mem_usage = mem(i);
		return s;
	});
	for (let i = 0; i < samples.length; i += 1000) {
		await api(token, "POST", `test/${t.id}/usage`, samples.slice(i, i + 1000));
	}
	if (end !== null) {
		await api(token, "POST", `test/${t.id}/stop`, { end_time: iso(start + end * 1000), ...command });
	}
	const cpus = samples.map((s) => s.cpu_usage);
	const mems = samples.filter((s) => "mem_usage" in s).map((s) => s.mem_usage);
	const above = cpus.reduce((sum, v) => sum + (v > threshold ? step : 0), 0);
	return {
		id: t.id, name, tags: tags ?? {}, n, end, threshold, above, command,
		peak: Math.max(...cpus), mean: cpus.reduce((a, b) => a + b, 0) / n,
		memPeak: mems.length ? Math.max(...mems) : null,
		memMean: mems.length ? mems.reduce((a, b) => a + b, 0) / mems.length : null,
	};
}

let page, consoleErrors, shot, visible, text;

// The ids of the rows on screen, in order.
const rowIds = () => page.locator("#runs-body tr").evaluateAll((rows) =>
	rows.map((r) => Number(r.dataset.id)));
// The ids the API lists for `query`, every page of them.
async function apiIds(token, query) {
	const ids = [];
	let before = "";
	for (;;) {
		const r = await api(token, "GET", `test?limit=200${query}${before}`);
		ids.push(...r.tests.map((t) => t.id));
		if (r.next === null) return ids;
		before = `&before=${r.next}`;
	}
}
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
// Wait until the rows are `want` (ids, in order).
const rowsAre = async (want) => same(await until(async () => {
	const got = await rowIds();
	return same(got, want) ? got : null;
}) ?? await rowIds(), want);
const hash = () => page.evaluate(() => location.hash);

async function main(b) {
	({ page, consoleErrors, shot, visible, text } = b);
	const { user, password, token } = await newUser("lister");

	// ---- runs ---------------------------------------------------------------------
	const base = Math.floor(Date.now() / 1000) * 1000 - 3 * 3600e3;
	const batch = [];
	for (let i = 0; i < 23; i++) {
		batch.push(await makeRun(token, { name: "batch", tags: { branch: "main" },
			start: base - 86400e3 + i * 60e3, n: 1, cpu: () => 0.1, end: 2 }));
	}
	const A = await makeRun(token, {
		name: "build", tags: { branch: "main", commit: COMMIT_A, ci: "github", host: "ci-1" },
		start: base, n: 20, cpu: (i) => (i % 4 === 0 ? 0.95 : 0.2 + i * 0.01),
		mem: (i) => 0.3 + i * 0.005, end: 20,
		command: { user_cpu: 12.34, system_cpu: 1.5, max_rss: 48212 } });
	const B = await makeRun(token, {
		name: "build", tags: { branch: "main", commit: COMMIT_B, ci: "gitlab" },
		start: base + 60e3, n: 10, cpu: (i) => 0.6 + i * 0.02, end: 10 });
	const C = await makeRun(token, {
		name: "build", tags: { branch: "feature/x y", ci: "github" }, threshold: 0.7,
		start: base + 120e3, n: 90, cpu: (i) => (i < 45 ? 0.8 : 0.06), mem: (i) => (i % 2 ? 0.5 : undefined),
		end: 90.5, command: { max_rss: 800 } });
	const D = await makeRun(token, {
		name: "test", tags: { branch: "main", evil: HOSTILE, "k.e/y-1": "a:b c" },
		start: base + 180e3, n: 3, cpu: () => 0.4, end: 3 });
	const E = await makeRun(token, { name: "deploy", start: base + 240e3, n: 5, cpu: () => 0.3, end: 5 });
	// 25000 samples: three pages of usage, drawn a group of samples a point.
	const L = await makeRun(token, {
		name: "large", tags: { branch: "main" }, start: base + 300e3, n: 25000, step: 0.1,
		cpu: (i) => (i === 12345 ? 0.999 : 0.3 + (i % 100) / 1000), mem: () => 0.25, end: 2500 });
	// An active batch run: the filtered list refreshes itself every few seconds.
	const active = await api(token, "POST", "test", { name: "batch", tags: { branch: "main" } });

	await logInPage(page, user, password);
	await page.locator("#runs-body tr").first().waitFor();

	// ---- tags in the list -------------------------------------------------------------
	const rowA = `#runs-body tr[data-id="${A.id}"]`;
	const rowD = `#runs-body tr[data-id="${D.id}"]`;
	const chipTexts = (row) => page.locator(`${row} .row-tags button.tag:not(.more)`)
		.evaluateAll((bs) => bs.map((x) => x.textContent));
	is(JSON.stringify(await chipTexts(rowA)),
		JSON.stringify(["branch: main", `commit: ${COMMIT_A.slice(0, 12)}`]),
		"a row shows branch and commit first, the commit shortened");
	is(await text(`${rowA} .row-tags .more`), "+2", "…and the other two behind a count");
	is(await page.getAttribute(`${rowA} .row-tags .more`, "title"), "ci: github\nhost: ci-1",
		"…which names them on hover");
	is(await page.getAttribute(`${rowA} .row-tags button.tag:nth-child(2)`, "title"),
		`Show only runs tagged commit: ${COMMIT_A}`, "the whole commit on hover");
	await page.click(`${rowA} .row-tags .more`);
	is(JSON.stringify(await chipTexts(rowA)), JSON.stringify(["branch: main",
		`commit: ${COMMIT_A.slice(0, 12)}`, "ci: github", "host: ci-1"]),
	"pressing the count shows every tag");
	check("a run without tags shows none",
		await page.locator(`#runs-body tr[data-id="${E.id}"] .row-tags`).count() === 0);
	await page.click(`${rowD} .row-tags .more`);
	const evil = await page.locator(`${rowD} .row-tags button.tag`).evaluateAll((bs) =>
		bs.map((x) => x.textContent));
	check("a hostile tag value is shown as text", evil.includes(`evil: ${HOSTILE}`),
		JSON.stringify(evil));
	check("…and is inert: no element made of it, nothing run",
		await page.locator("#runs-body img").count() === 0 &&
		await page.evaluate(() => window.__pwned === undefined));

	// ---- the filter form ------------------------------------------------------------------
	await page.fill("#filter-name", "build");
	await page.fill("#filter-tag", "branch:main");
	await page.click("#filter-form button[type=submit]");
	await until(async () => (await hash()) !== "");
	is(await hash(), "#/?name=build&tag=branch:main", "the filter is in the address");
	const buildMain = await apiIds(token, "&name=build&tag=branch:main");
	is(JSON.stringify(buildMain), JSON.stringify([B.id, A.id]), "(the API lists B and A)");
	check("the list shows exactly the runs the API lists for it", await rowsAre(buildMain),
		JSON.stringify(await rowIds()));
	check("the filters in force are shown, with Clear filters",
		await visible("#filters") && await visible("#filter-clear"));
	is(JSON.stringify(await page.locator("#filter-list li").evaluateAll((l) =>
		l.map((x) => x.firstChild.textContent + x.children[1].textContent))),
	JSON.stringify(["name:build", "branch:main"]), "…each of them");
	is(await page.getAttribute(`${rowA} .row-tags button.tag:first-child`, "aria-pressed"), "true",
		"a row's tag that is a filter shows as pressed");
	await shot("page-list-filter.png");

	// Pressing a row's tag adds it (A's row still shows all of them).
	await page.click(`${rowA} .row-tags button.tag:has-text("ci: github")`);
	await until(async () => (await hash()).includes("ci:github"));
	is(await hash(), "#/?name=build&tag=branch:main&tag=ci:github", "pressing a tag adds it to the filter");
	check("…and the list narrows to the API's answer",
		await rowsAre(await apiIds(token, "&name=build&tag=branch:main&tag=ci:github")));
	check("…which is A alone", same(await rowIds(), [A.id]), JSON.stringify(await rowIds()));

	// A value with a space and a slash, pressed in C's row, replaces branch:main.
	await page.click("#filter-list li:nth-child(2) .remove");
	await until(async () => (await hash()) === "#/?name=build&tag=ci:github");
	check("removing one filter keeps the others", await rowsAre([C.id, A.id]));
	await page.click(`#runs-body tr[data-id="${C.id}"] .row-tags button.tag:first-child`);
	await until(async () => (await hash()).includes("feature"));
	is(await hash(), "#/?name=build&tag=ci:github&tag=branch:feature/x%20y",
		"a value with a space and a slash, in the address");
	check("…finds its run", await rowsAre([C.id]));

	// Reload: the filter comes back from the address.
	await page.reload();
	await page.locator("#runs-body tr").first().waitFor();
	check("reloading keeps the filter", await rowsAre([C.id]));
	is(await page.inputValue("#filter-name"), "build", "…and the form shows its name");
	is(await page.locator("#filter-list li").count(), 3, "…and its filters");
	await page.click(`#runs-body tr[data-id="${C.id}"] td.name a`);
	await page.locator("#view-run .back a").waitFor();
	is(await page.getAttribute("#view-run .back a", "href"),
		"#/?name=build&tag=ci:github&tag=branch:feature/x%20y", "a run's “← Your runs” keeps the filter");
	await page.click("#view-run .back a");
	check("…and goes back to it", await rowsAre([C.id]));

	// Tags only; hostile and odd values through the address.
	await page.goto(`${URL_}/#/?tag=evil:${encodeURIComponent(HOSTILE)}&tag=k.e/y-1:a:b%20c`);
	check("a hostile value in the address filters as text", await rowsAre([D.id]));
	check("…and makes nothing of itself", await page.locator("#filters img").count() === 0 &&
		await page.evaluate(() => window.__pwned === undefined));

	// ---- paging and the live refresh keep the filter ------------------------------------
	await page.click("#filter-clear");
	await until(async () => (await hash()) === "#/");
	await page.fill("#filter-name", "batch");
	await page.click("#filter-form button[type=submit]");
	await until(async () => (await hash()) === "#/?name=batch");
	const batchIds = await apiIds(token, "&name=batch");
	is(batchIds.length, 24, "(the API lists 24 batch runs)");
	check("page 1 of the filtered list: the API's first 20", await rowsAre(batchIds.slice(0, 20)));
	await page.click("#runs-older");
	check("Older: the filtered list's next page", await rowsAre(batchIds.slice(20)));
	is(await hash(), "#/?name=batch", "…with the filter still in the address");
	await page.click("#runs-newer");
	check("Newer: back to the first", await rowsAre(batchIds.slice(0, 20)));

	// New runs while we look: the refresh shows the batch one, not the other.
	is(await text("#runs-status"), "Active runs update live.", "an active run: the list refreshes");
	const fresh = await api(token, "POST", "test", { name: "batch", tags: { branch: "main" } });
	const stranger = await api(token, "POST", "test", { name: "unfiltered" });
	const refreshed = await until(async () => (await rowIds())[0] === fresh.id, 15000);
	check("the live refresh brings the new batch run", refreshed, JSON.stringify(await rowIds()));
	check("…and keeps the filter: the other new run is not listed",
		!(await rowIds()).includes(stranger.id) &&
		same(await rowIds(), (await apiIds(token, "&name=batch")).slice(0, 20)));
	for (const t of [fresh, stranger, active]) await api(token, "POST", `test/${t.id}/stop`, {});

	// ---- nothing matches; bad filters --------------------------------------------------------
	await page.goto(`${URL_}/#/?name=no-such-run`);
	await page.locator("#runs-nomatch").waitFor();
	check("a filter matching nothing says so", /No runs match/.test(await text("#runs-nomatch")));
	check("…not “No runs yet”", !(await visible("#runs-empty")) && !(await visible("#runs")));

	await page.fill("#filter-tag", "nocolon");
	await page.click("#filter-form button[type=submit]");
	check("a tag without a colon is refused in the form",
		/KEY:VALUE/.test(await text("#filter-tag-error")), await text("#filter-tag-error"));
	is(await page.getAttribute("#filter-tag", "aria-invalid"), "true", "…the field marked");
	is(await hash(), "#/?name=no-such-run", "…and the address is unchanged");
	await page.fill("#filter-tag", "bad key:x");
	await page.click("#filter-form button[type=submit]");
	check("a bad key is refused, named",
		/“bad key” is not a tag key/.test(await text("#filter-tag-error")), await text("#filter-tag-error"));
	await page.fill("#filter-tag", `branch:${"v".repeat(257)}`);
	await page.click("#filter-form button[type=submit]");
	check("a value over 256 characters is refused",
		/at most 256/.test(await text("#filter-tag-error")), await text("#filter-tag-error"));
	await page.fill("#filter-tag", `${"k".repeat(65)}:x`);
	await page.click("#filter-form button[type=submit]");
	check("a key of 65 characters is refused",
		/is not a tag key: use 1 to 64/.test(await text("#filter-tag-error")), await text("#filter-tag-error"));
	await shot("page-list-bad-filter.png", false);
	// 32 tags: as many as the tracker takes (it finds nothing); a 33rd is refused here.
	const many = Array.from({ length: 32 }, (_, i) => `tag=k${i}:v`).join("&");
	await page.goto(`${URL_}/#/?${many}`);
	await page.locator("#runs-nomatch").waitFor();
	check("32 tags: the tracker answers, nothing matches", !(await visible("#runs-error")));
	await page.fill("#filter-tag", "k32:v");
	await page.click("#filter-form button[type=submit]");
	check("a 33rd tag is refused in the form",
		/at most 32 tags/.test(await text("#filter-tag-error")), await text("#filter-tag-error"));

	// The same through the address goes to the tracker, and its 400 is shown.
	await page.goto(`${URL_}/#/?tag=nocolon`);
	await page.locator("#runs-error").waitFor();
	const refused = await text("#runs-error");
	check("a 400 from the API is shown with its message",
		/refused this filter: Tag must be KEY:VALUE/.test(refused), refused);
	check("…and neither empty message", !(await visible("#runs-nomatch")) && !(await visible("#runs-empty")));
	await page.click("#filter-clear");
	check("Clear filters: every run again",
		await rowsAre((await apiIds(token, "")).slice(0, 20)));

	// ---- choosing runs to compare ---------------------------------------------------------------
	const pick = (id) => page.check(`#runs-body tr[data-id="${id}"] .pick`);
	const unpick = (id) => page.uncheck(`#runs-body tr[data-id="${id}"] .pick`);
	await page.goto(`${URL_}/#/?name=build`);
	check("filtered to the build runs", await rowsAre([C.id, B.id, A.id]));
	check("Compare is off with nothing ticked", await page.isDisabled("#compare-go"));
	await pick(A.id);
	check("one run ticked: Compare stays off", await page.isDisabled("#compare-go"));
	check("…and says why", /at least one more/.test(await text("#compare-picked")), await text("#compare-picked"));
	// Ticks survive a change of filter: five more from the whole list.
	await page.click("#filter-clear");
	await page.locator(`#runs-body tr[data-id="${L.id}"]`).waitFor();
	check("a ticked run stays ticked across filters",
		await page.isChecked(`#runs-body tr[data-id="${A.id}"] .pick`));
	for (const t of [B, C, D, E, L]) await pick(t.id);
	check("six ticked: Compare is off", await page.isDisabled("#compare-go"));
	check("…and says at most five", /at most 5/.test(await text("#compare-picked")),
		await text("#compare-picked"));
	for (const t of [D, E, L]) await unpick(t.id);
	check("three ticked: Compare is on", !(await page.isDisabled("#compare-go")));
	await page.click("#compare-go");
	await until(async () => (await hash()).startsWith("#/compare"));
	is(await hash(), `#/compare?ids=${[A.id, B.id, C.id].join(",")}`, "Compare opens the comparison's address");

	// ---- the comparison ------------------------------------------------------------------------
	await page.locator("#compare-chart .uplot").waitFor();
	const legend = () => page.locator("#compare-chart .u-legend .u-series .u-label")
		.evaluateAll((ls) => ls.map((l) => l.textContent));
	const labels = (await legend()).slice(1);
	is(JSON.stringify(labels), JSON.stringify([
		`build #${A.id} CPU`, `build #${A.id} memory`, `build #${B.id} CPU`,
		`build #${C.id} CPU`, `build #${C.id} memory`]),
	"the chart: each run's CPU, and memory for the two that have it, named");
	is(await text("#compare-heading"), "Comparing 3 runs", "the heading counts them");
	const heads = await page.locator("#compare-head th a").evaluateAll((as) =>
		as.map((a) => `${a.getAttribute("href")} ${a.textContent}`));
	is(JSON.stringify(heads), JSON.stringify([A, B, C].map((t) => `#/test/${t.id} build`)),
		"each column's header links to its run");
	const figure = async (name) => page.locator(`#compare-rows tr[data-figure="${name}"] td`)
		.evaluateAll((tds) => tds.map((td) => td.textContent));
	const row = async (name, want) => is(JSON.stringify(await figure(name)), JSON.stringify(want),
		`the table's ${name}`);
	await row("Duration", [secs(20), secs(10), secs(90.5)]);
	await row("Above threshold", [A, B, C].map((t) => `${secs(t.above)} (${pct(t.above / t.end)})`));
	await row("Peak CPU", [A, B, C].map((t) => pct(t.peak)));
	await row("Mean CPU", [A, B, C].map((t) => pct(t.mean)));
	await row("Peak memory", [pct(A.memPeak), "–", pct(C.memPeak)]);
	await row("Mean memory", [pct(A.memMean), "–", pct(C.memMean)]);
	await row("Command user CPU", ["12.34 s", "–", "–"]);
	await row("Command system CPU", ["1.50 s", "–", "–"]);
	await row("Command max RSS", [mib(48212), "–", "800 KiB"]);
	await row("Samples", ["20", "10", "90"]);
	await row("branch", ["main", "main", "feature/x y"]);
	await row("commit", [COMMIT_A, COMMIT_B, "–"]);
	await row("ci", ["github", "gitlab", "github"]);
	is(JSON.stringify(await page.locator("#compare-rows tr").evaluateAll((rs) =>
		rs.map((r) => r.dataset.figure))), JSON.stringify(["Status", "Started", "Duration",
		"Above threshold", "Threshold", "Peak CPU", "Mean CPU", "Peak memory", "Mean memory",
		"Command user CPU", "Command system CPU", "Command max RSS", "Samples",
		"branch", "commit", "ci", "host"]), "the rows, branch and commit first among the tags");
	await shot("page-compare.png");

	// On a phone, and in the dark.
	await page.setViewportSize({ width: 390, height: 844 });
	await page.reload();
	await page.locator("#compare-chart .uplot").waitFor();
	check("on a phone the chart fits the screen",
		await page.locator("#compare-chart").evaluate((e) => e.getBoundingClientRect().right <= 390));
	await shot("page-compare-phone.png");
	await page.goto(`${URL_}/#/?name=build`);
	await page.locator("#runs-body tr").first().waitFor();
	await shot("page-list-phone.png");
	await page.setViewportSize({ width: 1280, height: 900 });
	await page.emulateMedia({ colorScheme: "dark" });
	const began = Date.now();
	await page.goto(`${URL_}/#/compare?ids=${A.id},${C.id},${D.id},${L.id}`);
	await page.locator("#compare-chart .uplot").waitFor();
	console.log(`compare of 4 runs, ${A.n + C.n + D.n + L.n} samples: drawn in ${Date.now() - began} ms`);
	check("dark mode: the runs' colours are the dark ones",
		await page.evaluate(() => getComputedStyle(document.querySelector(".swatch.c1"))
			.backgroundColor) === "rgb(86, 180, 233)");
	await shot("page-compare-dark.png");
	await page.emulateMedia({ colorScheme: "light" });

	// A long run beside short ones: every sample read (three pages of the
	// API), drawn a group a point, its figures exact.
	await row("Samples", ["20", "90", "3", "25000"]);
	await row("Peak CPU", [A, C, D, L].map((t) => pct(t.peak)));
	await row("Duration", [secs(20), secs(90.5), secs(3), secs(2500)]);
	const points = Number(await page.getAttribute("#compare-chart", "data-points"));
	check("a run of 25000 samples is drawn with at most 2000 points (beside the others' 118)",
		points >= 1900 && points <= 2000 + 21 + 91 + 4 + 2, points);
	check("…and the chart says so", await visible("#compare-grouped"));

	// ---- what cannot be compared -------------------------------------------------------------
	await page.goto(`${URL_}/#/compare?ids=${A.id},${OTHER_RUN},999999999,abc`);
	await page.locator("#compare-error").waitFor();
	const missing = await text("#compare-error");
	check("another user's run, an unknown id and a word: each named as not loaded",
		missing.includes(`#${OTHER_RUN}, #999999999 and #abc`) && /none of your runs/.test(missing),
		missing);
	check("…and nothing of the other user's run shown",
		!(await page.locator("#view-compare").textContent()).includes("other-users-secret-run"));
	is(await page.locator("#compare-head th a").count(), 1, "…the one that loaded is shown");
	await page.goto(`${URL_}/#/compare?ids=${A.id}`);
	await until(async () => /only one/.test(await text("#compare-error")));
	check("one id: a comparison needs 2 to 5", /2 to 5 runs.*only one/.test(await text("#compare-error")),
		await text("#compare-error"));
	check("…and no chart", !(await visible("#compare-body")));
	await page.goto(`${URL_}/#/compare?ids=1,2,3,4,5,6`);
	await until(async () => /names 6/.test(await text("#compare-error")));
	check("six ids: a comparison needs 2 to 5", /2 to 5 runs/.test(await text("#compare-error")));
	const thousand = Array.from({ length: 1000 }, (_, i) => i + 1).join(",");
	await page.goto(`${URL_}/#/compare?ids=${thousand}`);
	await until(async () => /names 1000/.test(await text("#compare-error")));
	check("a thousand ids: refused at once", /names 1000\./.test(await text("#compare-error")),
		await text("#compare-error"));

	// A run the tracker fails to read (a 500, here made by the browser): its
	// error is shown, the other run drawn.
	const broken = `${URL_}/api/v1/test/${B.id}`;
	await page.route(broken, (r) => r.fulfill({ status: 500, contentType: "application/json",
		body: JSON.stringify({ error: "internal", message: "the database is unavailable" }) }));
	await page.goto(`${URL_}/#/compare?ids=${A.id},${B.id}`);
	await until(async () => /database/.test(await text("#compare-error")));
	is(await text("#compare-error"), `Could not load run #${B.id}: The database is unavailable.`,
		"an API error reading one run is shown");
	is(await page.locator("#compare-head th a").count(), 1, "…and the other run is shown");
	await page.unroute(broken);

	// Logged out, the address asks to log in, then shows the comparison.
	await page.click("#logout");
	await page.goto(`${URL_}/#/compare?ids=${A.id},${B.id}`);
	await page.locator("#view-welcome").waitFor();
	is(await text("#notice"), "Log in to compare your runs.", "logged out: asked to log in");
	await page.fill("#login-username", user);
	await page.fill("#login-password", password);
	await page.click("#login-form button[type=submit]");
	await page.locator("#compare-chart .uplot").waitFor();
	is(await page.locator("#compare-head th a").count(), 2, "…then the comparison");

	check("no errors in the console (CSP refusals included)", consoleErrors.length === 0,
		consoleErrors.join("\n"));
}

await finish("list", main);
