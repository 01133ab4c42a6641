// One run's page beyond CPU (issues 13 and 14), in headless Chromium: the
// memory series and figures, the command's figures, the tags (a hostile one
// among them), the baseline with the difference, and the trend of a figure
// across the runs of the same name and branch. Runs are made through the API
// as grasshopper makes them; every expected number is computed here from
// what was sent. Run by t/page.t; lib.mjs says how checks are reported.

import {
	URL_, check, is, until, api, newUser, iso, logInPage, finish,
} from "./lib.mjs";

// How the page writes numbers (as browser.mjs reads them): seconds to the
// tenth under a minute, a fraction as a whole percentage (one decimal under
// 10%), the command's CPU seconds to the hundredth, max RSS in MiB.
const secs = (s) => `${Math.round(s * 10) / 10} s`;
const pct = (f) => {
	const v = f * 100;
	return `${v > 0 && v < 10 ? v.toFixed(1) : Math.round(v)}%`;
};
const cpuSecs = (s) => `${s.toFixed(2)} s`;
const mib = (kib) => `${(kib / 1024).toFixed(1)} MiB`;
// The change from the baseline's median: "▲ +24%", "▼ −23%" (a decimal under 10%).
const change = (value, base) => {
	const d = ((value - base) / base) * 100;
	const shown = Math.abs(d).toFixed(Math.abs(d) < 10 ? 1 : 0);
	return `${d > 0 ? "▲ +" : "▼ −"}${shown}% ${d > 0 ? "more" : "less"}`;
};
const median = (xs) => {
	const s = xs.filter((x) => x !== null).sort((a, b) => a - b);
	if (s.length === 0) return null;
	const m = Math.floor(s.length / 2);
	return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const TAGS_MAX = 32;         // SPEC 6.3's limits on a test's tags
const TAG_KEY_MAX = 64;
const TAG_VALUE_MAX = 256;
const BASELINE_RUNS = 10;    // the runs a baseline is made of (the page asks for 10)
const TREND_RUNS = 30;       // the points of a trend
const THRESHOLD = 0.5;
const LOW_CPU = 0.2; // below the threshold
const LOW_MEM = 0.3;

// A stopped run's shape: `duration` one-second samples, the first `above` of
// them at CPU `peak` (above the threshold) and the rest at LOW_CPU; memory at
// LOW_MEM but the last sample's at `mem` (null: CPU only); the command's
// figures (null: not reported).
const HISTORY = [
	{ duration: 18, above: 6, peak: 0.9, mem: 0.41, command: { user_cpu: 10.4, system_cpu: 1.2, max_rss: 40960, exit_status: 0 } },
	{ duration: 22, above: 9, peak: 0.8, mem: 0.47, command: { user_cpu: 12.8, system_cpu: 1.6, max_rss: 51200, exit_status: 1 } },
	{ duration: 20, above: 7, peak: 0.7, mem: null, command: null },
	{ duration: 24, above: 8, peak: 0.86, mem: 0.44, command: { user_cpu: 11.6, system_cpu: 1.4, max_rss: 46080, exit_status: 0 } },
];
const RUN = { duration: 26, above: 12, peak: 0.95, mem: 0.52,
	command: { user_cpu: 14.62, system_cpu: 1.08, max_rss: 61440, exit_status: 0 } };
const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const HOSTILE = `<img src=x onerror="document.title='pwned'">`;
const JOB_URL = "https://ci.example.org/jobs/42?attempt=1&x=<b>";

function samplesOf(shape, start) {
	return Array.from({ length: shape.duration }, (_, i) => ({
		cpu_usage: i < shape.above ? shape.peak : LOW_CPU,
		...(shape.mem === null ? {} : { mem_usage: i === shape.duration - 1 ? shape.mem : LOW_MEM }),
		timestamp: iso(start + (i + 1) * 1000),
	}));
}

let clock = Date.now() - 86400e3; // each run starts a minute after the one before

// A run of `shape` made through the API, stopped unless `active`: its id.
async function made(token, name, tags, shape, { active = false } = {}) {
	const start = clock;
	clock += 60e3;
	const { id } = await api(token, "POST", "test", { name, threshold: THRESHOLD, tags, start_time: iso(start) });
	await api(token, "POST", `test/${id}/usage`, samplesOf(shape, start));
	if (!active) {
		await api(token, "POST", `test/${id}/stop`,
			{ end_time: iso(start + shape.duration * 1000), ...(shape.command ?? {}) });
	}
	return id;
}

let page, consoleErrors, shot, visible, text;

// The run page of `id`, loaded down to its baseline and trend (or the line
// that says why there is none).
async function openRun(id) {
	const to = `${URL_}/#/test/${id}`;
	// The same address again: reload, so that the charts take the new size and colours.
	if (page.url() === to) await page.reload();
	else await page.goto(to);
	await page.locator("#chart canvas").waitFor();
	await until(async () => (await text("#run-id")) === `#${id}`);
	await until(async () => (await text("#baseline-about")) !== "" || await visible("#baseline-error"));
	await until(async () => (await text("#trend-about")) !== "" || await visible("#trend-error"));
}

// What the run chart shows: its legend's series and its data's state.
const chartState = () => page.evaluate(() => {
	const box = document.getElementById("chart");
	return {
		legend: [...box.querySelectorAll(".u-legend .u-series .u-label")].map((e) => e.textContent),
		memory: box.dataset.memory,
		points: Number(box.dataset.points),
	};
});

// The baseline table as {figure: [this run, baseline, difference]}.
const baselineRows = () => page.locator("#baseline-body tr").evaluateAll((rows) =>
	Object.fromEntries(rows.map((r) => [r.dataset.figure,
		[".run-value", ".base-value", ".difference"].map((c) =>
			r.querySelector(c).textContent.replace(/\s+/g, " ").trim())])));

// The trend's links: [{id, text, current}], oldest first.
const trendLinks = () => page.locator("#trend-points a").evaluateAll((as) => as.map((a) => ({
	href: a.getAttribute("href"),
	text: a.parentElement.textContent,
	current: a.getAttribute("aria-current") === "page",
})));

async function main(b) {
	({ page, consoleErrors, shot, visible, text } = b);
	const { user, password, token } = await newUser("runview");

	// ---- the runs --------------------------------------------------------------
	const main = { branch: "main", ci: "github" };
	const ids = {};
	ids.h1 = await made(token, "build", main, HISTORY[0]);
	ids.dev = await made(token, "build", { branch: "dev" }, HISTORY[1]);
	ids.h2 = await made(token, "build", main, HISTORY[1]);
	ids.active = await made(token, "build", main, HISTORY[2], { active: true });
	ids.h3 = await made(token, "build", main, HISTORY[2]);
	ids.nb1 = await made(token, "build", {}, HISTORY[0]);
	ids.h4 = await made(token, "build", main, HISTORY[3]);
	ids.nb2 = await made(token, "build", { host: "box" }, HISTORY[3]);
	ids.run = await made(token, "build", {
		...main, commit: COMMIT, job_url: JOB_URL, repo: "ann/build", note: HOSTILE,
	}, RUN);
	ids.small1 = await made(token, "small", main, HISTORY[0]);
	ids.small2 = await made(token, "small", main, HISTORY[1]);
	ids.small = await made(token, "small", main, HISTORY[3]);
	ids.cpuOnly = await made(token, "cpu-only", {}, { ...HISTORY[2], mem: null });
	// The most tags a run may have (32), the longest keys and values, none
	// with a place to break, and a job_url that is no web address.
	const most = Object.fromEntries(Array.from({ length: TAGS_MAX - 1 }, (_, i) =>
		[`${"k".repeat(TAG_KEY_MAX - 2)}${String(i).padStart(2, "0")}`, "v".repeat(TAG_VALUE_MAX)]));
	ids.badUrl = await made(token, "bad-url", { ...most, job_url: "javascript:alert(1)" }, HISTORY[0]);
	// More earlier runs than a baseline takes (10) and a trend shows (30).
	ids.many = [];
	for (let i = 0; i < TREND_RUNS + 2; i++) {
		ids.many.push(await made(token, "many", main, { ...HISTORY[i % 4], mem: null, command: null }));
	}
	const history = HISTORY; // h1..h4, in that order
	const historyIds = [ids.h1, ids.h2, ids.h3, ids.h4];

	const t = await api(token, "GET", `test/${ids.run}`);
	const runMean = (RUN.mem + LOW_MEM * (RUN.duration - 1)) / RUN.duration;
	check("the API agrees with the run's arithmetic (memory, time above threshold)",
		t.max_mem_usage === RUN.mem && Math.abs(t.mean_mem_usage - runMean) < 1e-9 &&
		t.time_above_threshold === RUN.above, JSON.stringify(t));

	await logInPage(page, user, password);

	// ---- memory, the command, tags -------------------------------------------------
	await openRun(ids.run);
	is(await text("#run-duration"), secs(RUN.duration), "run page: duration");
	is(await text("#run-mem-peak"), pct(RUN.mem), "run page: peak memory");
	is(await text("#run-mem-mean"), pct(runMean), "run page: mean memory");
	is(await text("#run-peak"), pct(RUN.peak), "run page: peak CPU");
	let chart = await chartState();
	is(chart.memory, "true", "a run with memory samples: the chart has a memory series");
	is(JSON.stringify(chart.legend.slice(1)), JSON.stringify(["CPU", "Memory", "Threshold"]),
		"…and its legend names CPU, Memory and the threshold");
	check("…whose colour differs from CPU's, in the legend's marker too", await page.evaluate(() => {
		const m = [...document.querySelectorAll("#chart .u-legend .u-series .u-marker")]
			.map((e) => getComputedStyle(e).borderColor);
		return m[1] !== m[2];
	}));
	check("the caption explains the memory line", await visible("#caption-mem"));
	is(chart.points, RUN.duration, "one point per sample");

	check("the command's figures are shown", await visible("#run-command"));
	is(await text("#command-user"), cpuSecs(RUN.command.user_cpu), "the command: user CPU seconds");
	is(await text("#command-system"), cpuSecs(RUN.command.system_cpu), "the command: system CPU seconds");
	is(await text("#command-rss"), mib(RUN.command.max_rss), "the command: max RSS in MiB");
	is(await page.getAttribute("#command-rss", "title"), `${RUN.command.max_rss} KiB`, "…exact in KiB on hover");
	is(await text("#command-exit"), "0", "the command: exit status");

	const tags = await page.locator("#run-tags li").evaluateAll((lis) =>
		Object.fromEntries(lis.map((li) => [li.dataset.key, li.textContent])));
	is(JSON.stringify(Object.keys(tags)), JSON.stringify(["ci", "repo", "branch", "commit", "job_url", "note"]),
		"the tags, the detected ones first in their order, then the others");
	is(tags.branch, "branch=main", "a tag is shown as key=value");
	is(tags.commit, `commit=${COMMIT.slice(0, 12)}`, "the commit shortened to 12 characters");
	is(await page.getAttribute("#run-tags li[data-key=commit] abbr", "title"), COMMIT, "…the whole one on hover");
	const job = page.locator("#run-tags li[data-key=job_url] a");
	is(await job.getAttribute("href"), JOB_URL, "job_url is a link to the job");
	check("…opened with rel=noopener", /\bnoopener\b/.test(await job.getAttribute("rel")),
		await job.getAttribute("rel"));
	is(tags.note, `note=${HOSTILE}`, "a tag holding markup is shown as the text it is");
	check("…and makes no element, runs nothing",
		(await page.locator("#run-tags img, #run-tags script").count()) === 0 &&
		!(await page.title()).includes("pwned"), await page.title());
	await shot("page-run-memory.png");

	// ---- the baseline --------------------------------------------------------------
	const base = {
		duration: median(history.map((h) => h.duration)),
		time_above_threshold: median(history.map((h) => h.above)),
		max_cpu_usage: median(history.map((h) => h.peak)),
		max_mem_usage: median(history.map((h) => h.mem)),
		user_cpu: median(history.map((h) => h.command?.user_cpu ?? null)),
		system_cpu: median(history.map((h) => h.command?.system_cpu ?? null)),
		max_rss: median(history.map((h) => h.command?.max_rss ?? null)),
	};
	const expect = {
		duration: [secs(RUN.duration), secs(base.duration), change(RUN.duration, base.duration)],
		time_above_threshold: [secs(RUN.above), secs(base.time_above_threshold),
			change(RUN.above, base.time_above_threshold)],
		max_cpu_usage: [pct(RUN.peak), pct(base.max_cpu_usage), change(RUN.peak, base.max_cpu_usage)],
		max_mem_usage: [pct(RUN.mem), pct(base.max_mem_usage), change(RUN.mem, base.max_mem_usage)],
		user_cpu: [cpuSecs(RUN.command.user_cpu), cpuSecs(base.user_cpu),
			change(RUN.command.user_cpu, base.user_cpu)],
		system_cpu: [cpuSecs(RUN.command.system_cpu), cpuSecs(base.system_cpu),
			change(RUN.command.system_cpu, base.system_cpu)],
		max_rss: [mib(RUN.command.max_rss), mib(base.max_rss), change(RUN.command.max_rss, base.max_rss)],
	};
	const rows = await baselineRows();
	for (const [figure, want] of Object.entries(expect)) {
		is(JSON.stringify(rows[figure]), JSON.stringify(want),
			`baseline: ${figure}: this run, the median of its 4 earlier runs, the difference`);
	}
	is(Object.keys(rows).length, 7, "…and no other figure");
	const about = await text("#baseline-about");
	check("the baseline says what it is made of",
		/median of the 4 earlier stopped runs of “build” on branch main/.test(about), about);
	is(JSON.stringify(await page.locator("#baseline-about a").evaluateAll((as) => as.map((a) => a.getAttribute("href")))),
		JSON.stringify(historyIds.map((id) => `#/test/${id}`)),
		"…with links to exactly those runs (not another branch's, an active one, or this one)");
	const diffs = await page.locator("#baseline-body .difference .diff").evaluateAll((ds) =>
		ds.map((d) => ({ cls: d.className, color: getComputedStyle(d).color })));
	const worse = diffs.find((d) => /worse/.test(d.cls));
	const better = diffs.find((d) => /better/.test(d.cls));
	check("a heavier figure and a lighter one differ in colour (and arrow: ▲/▼)",
		worse && better && worse.color !== better.color, JSON.stringify(diffs));
	await page.locator("#baseline").scrollIntoViewIfNeeded();
	await shot("page-run-baseline.png", false);

	// Too small: two earlier runs.
	await openRun(ids.small);
	const small = await text("#baseline-about");
	check("2 earlier runs: the baseline is too small to compare, and says so",
		/too small to compare/.test(small) && /only 2 earlier stopped runs/.test(small) && /at least 3/.test(small), small);
	check("…and shows no median and no difference", !(await visible("#baseline-table")) &&
		(await page.locator("#baseline-body tr").count()) === 0, "");
	is(JSON.stringify(await page.locator("#baseline-about a").evaluateAll((as) => as.map((a) => a.getAttribute("href")))),
		JSON.stringify([ids.small1, ids.small2].map((id) => `#/test/${id}`)), "…but links to the two runs");

	// ---- a CPU-only run ----------------------------------------------------------------
	await openRun(ids.cpuOnly);
	chart = await chartState();
	is(chart.memory, "false", "a CPU-only run: no memory series");
	is(JSON.stringify(chart.legend.slice(1)), JSON.stringify(["CPU", "Threshold"]), "…its legend: CPU and the threshold");
	check("…no memory figures, no memory caption", !(await visible("#run-mem-peak")) &&
		!(await visible("#run-mem-mean")) && !(await visible("#caption-mem")));
	check("…no command figures (none reported), no tags", !(await visible("#run-command")) &&
		!(await visible("#run-tags")));
	check("…no earlier runs: nothing to compare with",
		/No earlier stopped runs of “cpu-only” without a branch tag/.test(await text("#baseline-about")),
		await text("#baseline-about"));
	await page.selectOption("#trend-select", "memory");
	check("…its trend of peak memory: no point, and a line saying why",
		(await page.locator("#trend-chart").evaluate((c) => c.dataset.points)) === "0" &&
		(await text("#trend-message")) === "None of these runs has a value for “Peak memory”." &&
		await visible("#trend-message"), await text("#trend-message"));

	await openRun(ids.badUrl);
	check("a job_url that is not http(s) is text, not a link",
		(await page.locator("#run-tags a").count()) === 0 &&
		(await text("#run-tags li[data-key=job_url]")) === "job_url=javascript:alert(1)",
		await text("#run-tags"));
	is(await page.locator("#run-tags li").count(), TAGS_MAX, "the most tags a run may have: all shown");
	await page.setViewportSize({ width: 390, height: 844 });
	check("phone: 32 tags of the longest keys and values, none with a place to break, fit the screen's width",
		await until(async () => (await page.evaluate(() => document.documentElement.scrollWidth)) <= 390),
		await page.evaluate(() => document.documentElement.scrollWidth));
	await page.setViewportSize({ width: 1280, height: 900 });

	// More runs than a baseline and a trend take: the newest of them only.
	const last = ids.many[ids.many.length - 1];
	await openRun(last);
	is(JSON.stringify(await page.locator("#baseline-about a").evaluateAll((as) => as.map((a) => a.getAttribute("href")))),
		JSON.stringify(ids.many.slice(-1 - BASELINE_RUNS, -1).map((id) => `#/test/${id}`)),
		`${ids.many.length - 1} earlier runs: the baseline is made of the last ${BASELINE_RUNS}`);
	is(JSON.stringify((await trendLinks()).map((l) => l.href)),
		JSON.stringify(ids.many.slice(-TREND_RUNS).map((id) => `#/test/${id}`)),
		`${ids.many.length} runs: the trend shows the newest ${TREND_RUNS}, this one last`);
	await openRun(ids.many[1]);
	is(JSON.stringify((await trendLinks()).map((l) => `${l.href} ${l.current}`)),
		JSON.stringify([`#/test/${ids.many[0]} false`, `#/test/${ids.many[1]} true`]),
		"an older run than the newest 30: the trend is of the runs up to it");

	// ---- the trend -------------------------------------------------------------------
	await openRun(ids.run);
	const trendIds = [...historyIds, ids.run]; // main's stopped runs, oldest first
	await page.selectOption("#trend-select", "duration");
	let links = await trendLinks();
	is(JSON.stringify(links.map((l) => l.href)), JSON.stringify(trendIds.map((id) => `#/test/${id}`)),
		"trend: the stopped runs of the name on the branch, oldest first, each a link");
	is(JSON.stringify(links.map((l) => l.current)), JSON.stringify(trendIds.map((id) => id === ids.run)),
		"…this run marked as the current one");
	is(JSON.stringify(links.map((l) => l.text)),
		JSON.stringify([...history, RUN].map((h, i) => `#${trendIds[i]} ${secs(h.duration)}`)),
		"…each with its duration");
	const trendChart = () => page.locator("#trend-chart").evaluate((c) => ({
		points: Number(c.dataset.points), runs: Number(c.dataset.runs), current: Number(c.dataset.current),
		canvas: !!c.querySelector("canvas"),
	}));
	let tc = await trendChart();
	check("…and as many points on its chart, this run's ringed", tc.canvas && tc.points === 5 &&
		tc.runs === 5 && tc.current === 4, JSON.stringify(tc));
	await page.selectOption("#trend-select", "memory");
	tc = await trendChart();
	links = await trendLinks();
	check("peak memory: a point for each run that has it (4 of 5)", tc.points === 4 &&
		links[2].text === `#${ids.h3} –` && links[4].text === `#${ids.run} ${pct(RUN.mem)}`,
	JSON.stringify([tc, links]));
	await page.selectOption("#trend-select", "command");
	tc = await trendChart();
	links = await trendLinks();
	const cpuOf = (h) => h.command.user_cpu + h.command.system_cpu;
	check("command CPU seconds (user + system): 4 of 5", tc.points === 4 &&
		links[0].text === `#${ids.h1} ${secs(cpuOf(HISTORY[0]))}` &&
		links[4].text === `#${ids.run} ${secs(cpuOf(RUN))}`, JSON.stringify([tc, links]));
	await page.selectOption("#trend-select", "above");
	links = await trendLinks();
	is(links[1].text, `#${ids.h2} ${secs(HISTORY[1].above)}`, "time above threshold");
	await page.locator("#trend").scrollIntoViewIfNeeded();
	await shot("page-run-trend.png", false);

	// A click on a point opens its run; so does a link, from the keyboard.
	const over = await page.locator("#trend-chart .u-over").boundingBox();
	await page.mouse.click(over.x + ((1 + 0.5) / 5) * over.width, over.y + over.height / 2);
	await page.waitForURL(`**/#/test/${ids.h2}`);
	check("a click on the trend's second point opens that run", page.url().endsWith(`#/test/${ids.h2}`), page.url());
	// One read per step: the trend is drawn again while the new run loads.
	await until(async () => {
		const l = await trendLinks();
		return l.length === 5 && l[1].current;
	});
	is(await page.inputValue("#trend-select"), "above", "…whose trend shows the same figure");
	await page.focus(`#trend-points a[href="#/test/${ids.h4}"]`);
	await page.keyboard.press("Enter");
	await page.waitForURL(`**/#/test/${ids.h4}`);
	check("a trend link followed with the keyboard opens its run", page.url().endsWith(`#/test/${ids.h4}`));

	// Without a branch tag: the runs of the name without one, picked out by the page.
	await openRun(ids.nb1);
	await page.selectOption("#trend-select", "duration");
	links = await trendLinks();
	is(JSON.stringify(links.map((l) => l.href)), JSON.stringify([ids.nb1, ids.nb2].map((id) => `#/test/${id}`)),
		"no branch tag: the trend has only the runs of the name without one");
	check("…and says so", /without a branch tag/.test(await text("#trend-about")), await text("#trend-about"));

	// ---- failures: an unknown run, an API error --------------------------------------
	await page.goto(`${URL_}/#/test/999999999`);
	await page.locator("#run-missing").waitFor();
	check("an unknown run id: not found, and no baseline or trend of anything",
		!(await visible("#run")) && (await text("#baseline-about")) === "" &&
		(await page.locator("#trend-points a").count()) === 0);

	await page.route(`**/api/v1/test/${ids.run}/baseline*`, (r) => r.fulfill({
		status: 503, contentType: "application/json",
		body: JSON.stringify({ error: "unavailable", message: "the database is unavailable" }) }));
	await page.goto(`${URL_}/#/test/${ids.run}`);
	await page.locator("#baseline-error").waitFor();
	is(await text("#baseline-error"), "Could not load the baseline: the database is unavailable",
		"the baseline's API error is shown to the user");
	check("…and the rest of the run still shows, the trend too",
		await until(async () => (await page.locator("#trend-points a").count()) === 5) &&
		!(await visible("#baseline-table")));
	await page.unroute(`**/api/v1/test/${ids.run}/baseline*`);
	const list = (u) => u.pathname === "/api/v1/test" && u.searchParams.has("name");
	await page.route(list, (r) => r.fulfill({ status: 500, contentType: "text/html", body: "<h1>oops</h1>" }));
	await page.reload();
	await page.locator("#trend-error").waitFor();
	check("the trend's API error is shown to the user",
		/^Could not load the trend: The tracker answered 500/.test(await text("#trend-error")),
		await text("#trend-error"));
	check("…and the baseline still shows", await until(() => visible("#baseline-table")));
	await page.unroute(list);

	// ---- a live run: both series follow it --------------------------------------------
	const liveStart = Date.now() - 20e3;
	const live = (await api(token, "POST", "test", { name: "live", start_time: iso(liveStart) })).id;
	await api(token, "POST", `test/${live}/usage`,
		[0.3, 0.6].map((v, i) => ({ cpu_usage: v, timestamp: iso(liveStart + (i + 1) * 1000) })));
	await page.goto(`${URL_}/#/test/${live}`);
	await page.locator("#chart canvas").waitFor();
	is((await chartState()).memory, "false", "a live run, CPU only so far: no memory series");
	check("…and no baseline until it stops", /when this run has stopped/.test(await text("#baseline-about")),
		await text("#baseline-about"));
	await api(token, "POST", `test/${live}/usage`,
		[[0.7, 0.35], [0.4, 0.61]].map(([c, m], i) => ({ cpu_usage: c, mem_usage: m, timestamp: iso(liveStart + (i + 3) * 1000) })));
	check("memory samples arriving: the memory series appears by itself",
		await until(async () => (await chartState()).memory === "true" && (await chartState()).points === 4, 10000),
		JSON.stringify(await chartState()));
	is(JSON.stringify((await chartState()).legend.slice(1)), JSON.stringify(["CPU", "Memory", "Threshold"]),
		"…with its legend entry");
	is(await text("#run-mem-peak"), pct(0.61), "…and the peak memory");
	await api(token, "POST", `test/${live}/usage`, { cpu_usage: 0.5, mem_usage: 0.72, timestamp: iso(liveStart + 5000) });
	check("both series go on following it",
		await until(async () => (await chartState()).points === 5 && (await text("#run-mem-peak")) === pct(0.72), 10000),
		JSON.stringify(await chartState()));
	await api(token, "POST", `test/${live}/stop`, { user_cpu: 0.5, system_cpu: 0.25, max_rss: 900, exit_status: 3 });
	check("stopped: the command's figures show by themselves",
		await until(async () => (await text("#command-rss")) === "900 KiB", 10000), await text("#command-rss"));
	check("…a failing exit status stands out", (await text("#command-exit")) === "3" &&
		await page.locator("#command-exit").evaluate((e) => e.classList.contains("failed")));
	check("…and the baseline is asked for: none yet",
		await until(async () => /No earlier stopped runs of “live”/.test(await text("#baseline-about")), 10000),
		await text("#baseline-about"));

	// ---- a phone, and dark -----------------------------------------------------------
	await page.setViewportSize({ width: 390, height: 844 });
	await openRun(ids.run);
	const width = () => page.evaluate(() => document.documentElement.scrollWidth);
	check("phone: the run with its tags, baseline and trend fits the screen's width",
		(await width()) <= 390, await width());
	check("phone: the baseline's rows are labelled lines", await page.locator("#baseline-body td.difference")
		.first().evaluate((td) => getComputedStyle(td, "::before").content.includes("Difference")));
	await shot("page-run-history-phone.png");
	await page.setViewportSize({ width: 1280, height: 900 });
	await page.emulateMedia({ colorScheme: "dark" });
	await openRun(ids.run);
	check("dark: the memory series has a colour of its own for the dark background",
		await page.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue("--chart-mem").trim()) !== "#6a3fb5");
	await shot("page-run-history-dark.png");
	await page.emulateMedia({ colorScheme: "light" });

	check("no errors in the console (CSP refusals included)", consoleErrors.length === 0,
		consoleErrors.join("\n"));
}

await finish("run", main);
