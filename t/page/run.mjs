// One run's page beyond CPU (issue 13), in headless Chromium: the memory
// series and figures, the command's figures, the tags (a hostile one among
// them). Runs are made through the API
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
const TAGS_MAX = 32;         // SPEC 6.3's limits on a test's tags
const TAG_KEY_MAX = 64;
const TAG_VALUE_MAX = 256;
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

// The run page of `id`, loaded.
async function openRun(id) {
	const to = `${URL_}/#/test/${id}`;
	// The same address again: reload, so that the charts take the new size and colours.
	if (page.url() === to) await page.reload();
	else await page.goto(to);
	await page.locator("#chart canvas").waitFor();
	await until(async () => (await text("#run-id")) === `#${id}`);
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

	// ---- a CPU-only run ----------------------------------------------------------------
	await openRun(ids.cpuOnly);
	chart = await chartState();
	is(chart.memory, "false", "a CPU-only run: no memory series");
	is(JSON.stringify(chart.legend.slice(1)), JSON.stringify(["CPU", "Threshold"]), "…its legend: CPU and the threshold");
	check("…no memory figures, no memory caption", !(await visible("#run-mem-peak")) &&
		!(await visible("#run-mem-mean")) && !(await visible("#caption-mem")));
	check("…no command figures (none reported), no tags", !(await visible("#run-command")) &&
		!(await visible("#run-tags")));

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

	// ---- an unknown run ------------------------------------------------------------
	await page.goto(`${URL_}/#/test/999999999`);
	await page.locator("#run-missing").waitFor();
	check("an unknown run id: not found, nothing of a run shown", !(await visible("#run")));

	// ---- a live run: both series follow it --------------------------------------------
	const liveStart = Date.now() - 20e3;
	const live = (await api(token, "POST", "test", { name: "live", start_time: iso(liveStart) })).id;
	await api(token, "POST", `test/${live}/usage`,
		[0.3, 0.6].map((v, i) => ({ cpu_usage: v, timestamp: iso(liveStart + (i + 1) * 1000) })));
	await page.goto(`${URL_}/#/test/${live}`);
	await page.locator("#chart canvas").waitFor();
	is((await chartState()).memory, "false", "a live run, CPU only so far: no memory series");
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

	// ---- a phone, and dark -----------------------------------------------------------
	await page.setViewportSize({ width: 390, height: 844 });
	await openRun(ids.run);
	const width = () => page.evaluate(() => document.documentElement.scrollWidth);
	check("phone: the run with its tags and the command's figures fits the screen's width",
		(await width()) <= 390, await width());
	await shot("page-run-memory-phone.png");
	await page.setViewportSize({ width: 1280, height: 900 });
	await page.emulateMedia({ colorScheme: "dark" });
	await openRun(ids.run);
	check("dark: the memory series has a colour of its own for the dark background",
		await page.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue("--chart-mem").trim()) !== "#6a3fb5");
	await shot("page-run-memory-dark.png");
	await page.emulateMedia({ colorScheme: "light" });

	check("no errors in the console (CSP refusals included)", consoleErrors.length === 0,
		consoleErrors.join("\n"));
}

await finish("run", main);
