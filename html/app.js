// grasshopper's web page: sign up, log in, hand the token to grasshopper, see
// one's runs with a CPU-usage chart, and manage one's tokens and password. A
// plain ES module over the v1 API; the chart is uPlot (vendor/, copied from
// node_modules by make), loaded by index.html before this file. The CSP
// allows only this origin's scripts and styles, so text goes into the page
// with textContent, never as markup.
//
// Views, chosen by the address's hash (router at the end):
//   #/            logged out: log in / sign up; logged in: token and runs
//   #/?name=N&tag=KEY:VALUE…   the runs filtered (tag repeatable)
//   #/test/ID     one run: details, chart, CSV (the URL grasshopper prints),
//                 memory, the command, tags, baseline, trend
//   #/compare?ids=ID,ID…       2 to 5 runs on one chart, figures side by side
//   #/tokens      named tokens, change password, log out everywhere

const API = "/api/v1";
const SESSION_KEY = "grasshopper.session";
const RUNS_PAGE = 20;             // runs per page of the list
const LIST_ACTIVE_POLL_MS = 3000; // a list page with active runs refreshes
const LIST_IDLE_POLL_MS = 15000;  // the first page, for runs that start
const RUN_POLL_MS = 2000;         // an active run: its numbers, new samples
const USAGE_PAGE = 10000;         // the API's largest usage `limit`
const COMMIT_SHOWN = 12;          // characters of a commit shown; the whole one on hover

// ---- the API -------------------------------------------------------------

// An error answer from the tracker: `code` is its "error" field ("network"
// when the tracker could not be reached), `message` a sentence for people.
class ApiError extends Error {
	constructor(status, code, message) {
		super(message);
		this.status = status;
		this.code = code;
	}
}

// Call the tracker. Resolves to the JSON body of a 2xx answer (or its text
// when `accept` is not JSON), rejects with an ApiError for anything else.
async function api(method, path, { body, token, accept = "application/json" } = {}) {
	const headers = { Accept: accept };
	if (body !== undefined) headers["Content-Type"] = "application/json";
	if (token) headers.Authorization = `Bearer ${token}`;

	let response;
	try {
		response = await fetch(API + path, {
			method,
			headers,
			body: body === undefined ? undefined : JSON.stringify(body),
			cache: "no-store",
			credentials: "omit",
		});
	} catch {
		throw new ApiError(0, "network", "Could not reach the tracker. Is it running?");
	}
	if (response.ok && accept !== "application/json") return response.text();

	let data = null;
	try {
		data = await response.json();
	} catch {
		// Not JSON (a proxy's error page, say): fall through with no body.
	}
	if (response.ok) return data;
	if (data && typeof data.message === "string") {
		throw new ApiError(response.status, data.error, data.message);
	}
	throw new ApiError(response.status, "http",
		`The tracker answered ${response.status} ${response.statusText}.`);
}

// Call the tracker as the logged-in user. A 401 means the token is no good
// any more (expired; revoked by logging out everywhere or by a password
// change, here or elsewhere; or the server's secret changed): forget it and go back
// to the log-in form, then reject as api() does.
async function authed(method, path, options = {}) {
	const session = sessionLoad();
	if (!session) {
		route();
		throw new ApiError(401, "unauthorized", "Not logged in.");
	}
	try {
		return await api(method, path, { ...options, token: session.token });
	} catch (e) {
		if (e.status === 401) {
			accountForget();
			notice = "Your session has ended (it expired, or was logged out " +
				"everywhere): log in again.";
			route();
		}
		throw e;
	}
}

// ---- the session: the token lives only in this tab's sessionStorage -------

function sessionLoad() {
	try {
		const s = JSON.parse(sessionStorage.getItem(SESSION_KEY));
		if (s && typeof s.token === "string" && Date.parse(s.expires_at) > Date.now()) {
			return s;
		}
	} catch {
		// Missing or unreadable: no session.
	}
	sessionClear();
	return null;
}

function sessionSave(s) {
	sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
}

function sessionClear() {
	sessionStorage.removeItem(SESSION_KEY);
}

// Forget the session, and leave nothing of the account in the page's hidden
// views for whoever uses this tab next.
function accountForget() {
	sessionClear();
	$("token-text").value = "";
	$("runs-body").replaceChildren();
	$("tokens-body").replaceChildren();
	runMoreForget();
	comparePicked.clear();
	tagsOpen.clear();
}

// ---- numbers and times, as people read them --------------------------------

// API timestamps (UTC, up to microseconds) → seconds since the epoch, keeping
// the fraction Date.parse would cut to milliseconds.
function parseTs(s) {
	const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$/.exec(s ?? "");
	if (!m) return NaN;
	return Date.parse(`${m[1]}Z`) / 1000 + (m[2] ? Number(m[2]) : 0);
}

const pad2 = (n) => String(n).padStart(2, "0");

// Seconds: "2 s", "2.5 s", "1 min 05 s", "2 h 03 min".
function fmtSeconds(s) {
	if (typeof s !== "number" || !Number.isFinite(s) || s < 0) return "–";
	const tenths = Math.round(s * 10) / 10;
	if (tenths < 60) return `${tenths} s`;
	const whole = Math.round(s);
	if (whole < 3600) return `${Math.floor(whole / 60)} min ${pad2(whole % 60)} s`;
	return `${Math.floor(whole / 3600)} h ${pad2(Math.floor(whole / 60) % 60)} min`;
}

// A fraction as a percentage: "95%", "4.2%".
// The command's CPU seconds, as time -v gives them: "1.52 s" (longer ones as fmtSeconds).
function fmtCpu(s) {
	if (typeof s !== "number" || !Number.isFinite(s) || s < 0) return "–";
	return s < 60 ? `${s.toFixed(2)} s` : fmtSeconds(s);
}

// KiB, as wait4 reports max RSS: "812 KiB", "47.1 MiB", "2.35 GiB".
function fmtKiB(k) {
	if (typeof k !== "number" || !Number.isFinite(k) || k < 0) return "–";
	if (k < 1024) return `${k} KiB`;
	if (k < 1024 * 1024) return `${(k / 1024).toFixed(1)} MiB`;
	return `${(k / 1024 / 1024).toFixed(2)} GiB`;
}

function fmtPercent(f) {
	if (typeof f !== "number" || !Number.isFinite(f)) return "–";
	const v = f * 100;
	return `${v > 0 && v < 10 ? v.toFixed(1) : Math.round(v)}%`;
}

// Time above threshold with its share of the duration: "2 s", " (50%)".
function fmtAbove(t) {
	const share = t.duration > 0 ? t.time_above_threshold / t.duration : null;
	return [fmtSeconds(t.time_above_threshold),
		share === null ? "" : ` (${fmtPercent(share)})`];
}

const dateLong = new Intl.DateTimeFormat(undefined, {
	dateStyle: "medium", timeStyle: "medium" });
const dateShort = new Intl.DateTimeFormat(undefined, {
	month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });

// A <time> element for an API timestamp, in local time; UTC on hover.
function timeElement(ts, format = dateLong) {
	const t = document.createElement("time");
	t.dateTime = ts;
	t.title = ts;
	t.textContent = format.format(new Date(parseTs(ts) * 1000));
	return t;
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const RELATIVE_UNITS = [["year", 365 * 86400], ["day", 86400], ["hour", 3600], ["minute", 60]];

// An API timestamp against now: "in 90 days", "5 minutes ago", "just now",
// "within a minute".
function fmtRelative(ts) {
	const s = parseTs(ts) - Date.now() / 1000;
	if (!Number.isFinite(s)) return "–";
	for (const [unit, size] of RELATIVE_UNITS) {
		if (Math.abs(s) >= size) return relative.format(Math.round(s / size), unit);
	}
	return s > 0 ? "within a minute" : "just now";
}

// A <time> element reading relative to now; the local date and time on hover.
function relativeElement(ts) {
	const t = document.createElement("time");
	t.dateTime = ts;
	t.title = dateLong.format(new Date(parseTs(ts) * 1000));
	t.textContent = fmtRelative(ts);
	return t;
}

// ---- the page's pieces -------------------------------------------------------

const $ = (id) => document.getElementById(id);

// el("td", {className: "num"}, "text", child…): an element with properties
// and children (strings become text).
function el(tag, props = {}, ...children) {
	const e = Object.assign(document.createElement(tag), props);
	e.append(...children.filter((c) => c !== null && c !== undefined));
	return e;
}

function badge(active) {
	return el("span", { className: active ? "badge active" : "badge" },
		active ? "Active" : "Finished");
}

// One timer for what is on screen; every route cancels it. `seq` numbers the
// routes, so that an answer arriving after the user moved on is dropped.
let pollTimer = 0;
let seq = 0;
let notice = ""; // a message for the next view (why we are logged out, say)

function poll(mySeq, ms, work) {
	clearTimeout(pollTimer);
	pollTimer = setTimeout(async () => {
		if (mySeq !== seq) return;
		if (document.hidden) {
			poll(mySeq, ms, work); // a hidden tab asks nothing
			return;
		}
		await work();
	}, ms);
}

function showView(name) {
	for (const v of ["welcome", "home", "run", "tokens", "compare"]) $(`view-${v}`).hidden = v !== name;
	if (name === "tokens") $("nav-tokens").setAttribute("aria-current", "page");
	else $("nav-tokens").removeAttribute("aria-current");
}

// ---- logged out: log in and sign up -----------------------------------------

function showWelcome() {
	showView("welcome");
	$("account").hidden = true;
}

// Show `message` under `input` (empty to clear it) and mark the field.
function fieldError(input, message) {
	$(`${input.id}-error`).textContent = message;
	if (message) input.setAttribute("aria-invalid", "true");
	else input.removeAttribute("aria-invalid");
}

function formError(form, message) {
	form.querySelector(".error").textContent = message;
}

function clearErrors(form) {
	formError(form, "");
	for (const input of form.querySelectorAll("input")) {
		if ($(`${input.id}-error`)) fieldError(input, "");
	}
}

// Disable a form's submit button while a request is in flight.
async function busy(form, work) {
	const button = form.querySelector("button[type=submit]");
	button.disabled = true;
	try {
		await work();
	} finally {
		button.disabled = false;
	}
}

const sentence = (s) => s.charAt(0).toUpperCase() + s.slice(1);

// An API message as a sentence of its own: "Wrong password." from "wrong password".
const asSentence = (s) => sentence(/[.!?]$/.test(s) ? s : `${s}.`);

// The sign-up field an API error is about: the API's messages start with the
// field's name ("password must be 8 to 1024 bytes long").
function errorField(form, e) {
	if (e.code === "username_taken") return form.username;
	if (e.code === "invalid_field") {
		const m = /^(username|password|email)\b/.exec(e.message);
		if (m) return form[m[1]];
	}
	return null;
}

async function logIn(username, password) {
	const { token, expires_at } = await api("POST", "/auth", {
		body: { username, password },
	});
	sessionSave({ username, token, expires_at });
	justLoggedIn = true;
	route();
}

function onLogin(event) {
	event.preventDefault();
	const form = event.currentTarget;
	formError(form, "");
	if (!form.username.value || !form.password.value) {
		formError(form, "Enter your username and password.");
		(form.username.value ? form.password : form.username).focus();
		return;
	}
	busy(form, async () => {
		try {
			await logIn(form.username.value, form.password.value);
			form.reset();
		} catch (e) {
			formError(form, e.message);
		}
	});
}

// The browser's checks, with messages of our own beside each field.
function signupValid(form) {
	const problems = [
		[form.username, form.username.validity.valid ? ""
			: "Use 1 to 64 letters, digits, _, . or -."],
		[form.password, form.password.value.length >= 8 ? ""
			: "Use at least 8 characters."],
		[form.confirm, form.confirm.value === form.password.value ? ""
			: "The two passwords differ."],
		[form.email, form.email.validity.valid ? ""
			: "Enter an address like name@example.org, or nothing."],
	];
	return showProblems(problems);
}

// Show each [input, message] pair beside its input ("" clears it) and focus
// the first input with a message; true when there is none.
function showProblems(problems) {
	let first = null;
	for (const [input, message] of problems) {
		fieldError(input, message);
		if (message && !first) first = input;
	}
	if (first) first.focus();
	return !first;
}

function onSignup(event) {
	event.preventDefault();
	const form = event.currentTarget;
	clearErrors(form);
	if (!signupValid(form)) return;

	const body = {
		username: form.username.value,
		password: form.password.value,
	};
	// The API takes email only when there is one: null would be a wrong type.
	const email = form.email.value.trim();
	if (email !== "") body.email = email;

	busy(form, async () => {
		try {
			await api("POST", "/users", { body });
		} catch (e) {
			const input = errorField(form, e);
			if (input) {
				fieldError(input, `${sentence(e.message)}.`);
				input.focus();
			} else {
				formError(form, e.message);
			}
			return;
		}
		// The account exists: log straight in with the same credentials.
		try {
			await logIn(body.username, body.password);
			form.reset();
		} catch (e) {
			formError(form, `Account created, but logging in failed: ${e.message}`);
		}
	});
}

// ---- logged in: the token ------------------------------------------------------

let justLoggedIn = false;

// The commands to paste never hold the token itself: a command line ends up in
// the shell's history and in `ps` for every user to read. `grasshopper login`
// reads the token at its prompt; CI gives it through a secret variable.
function showToken(session) {
	$("token-expiry").replaceWith(Object.assign(timeElement(session.expires_at),
		{ id: "token-expiry" }));
	$("token-text").value = session.token;
	// After login, grasshopper sends to the server it logged in to.
	$("command-text").value = `grasshopper login --server ${location.origin}\ngrasshopper -- make test`;
	$("ci-text").value = `grasshopper --server ${location.origin} -- make test`;
	$("copy-status").textContent = "";
}

const COPIED = {
	"token-text": "Token copied: paste it at grasshopper login's prompt.",
	"command-text": "Commands copied: paste them into a terminal.",
	"ci-text": "Command copied: put it in your CI job.",
	"created-token": "Token copied to the clipboard.",
};

async function onCopy(event) {
	const field = $(event.currentTarget.dataset.copy);
	const status = $(field.id === "created-token" ? "created-status" : "copy-status");
	try {
		await navigator.clipboard.writeText(field.value);
		status.textContent = COPIED[field.id];
	} catch {
		// No clipboard access (an insecure origin, say): select it instead.
		field.focus();
		field.select();
		status.textContent = "Selected: press Ctrl+C (or ⌘C) to copy.";
	}
}

// ---- logged in: the list of runs -------------------------------------------------

// The page on screen: `before` as the API takes it (null: the newest), and
// the `before`s of the newer pages, to go back.
const list = { before: null, newer: [] };

async function listLoad(mySeq) {
	const q = new URLSearchParams({ limit: RUNS_PAGE });
	if (list.before !== null) q.set("before", list.before);
	filterQuery(q);
	let data;
	try {
		data = await authed("GET", `/test?${q}`);
	} catch (e) {
		if (mySeq !== seq) return;
		// A filter the tracker refuses stays refused: say why, ask no more.
		const refused = e.status === 400 && filterActive();
		$("runs-error").textContent = refused
			? `The tracker refused this filter: ${asSentence(e.message)}`
			: `Could not load your runs: ${e.message}`;
		$("runs-error").hidden = false;
		if (!refused) poll(mySeq, LIST_IDLE_POLL_MS, () => listLoad(mySeq));
		return;
	}
	if (mySeq !== seq) return;
	$("runs-error").hidden = true;
	listRender(data);

	const active = data.tests.some((t) => t.active);
	$("runs-status").textContent = active ? "Active runs update live." : "";
	if (active) poll(mySeq, LIST_ACTIVE_POLL_MS, () => listLoad(mySeq));
	else if (list.before === null) poll(mySeq, LIST_IDLE_POLL_MS, () => listLoad(mySeq));
}

// One cell that turns into a labelled line on a phone (see style.css).
function cell(label, props, ...children) {
	const td = el("td", props, ...children);
	td.dataset.label = label;
	return td;
}

function runRow(t) {
	const link = el("a", { href: `#/test/${t.id}` }, t.name);
	// Without samples there is nothing measured to show.
	const measured = t.samples > 0;
	const share = t.duration > 0 ? Math.min(1, t.time_above_threshold / t.duration) : 0;
	const bar = el("span", { className: "bar" });
	bar.style.setProperty("--share", String(share));
	const meter = el("span", { className: "meter", title:
		`${fmtPercent(share)} of the run above ${fmtPercent(t.threshold)}` }, bar);

	const row = el("tr", {},
		cell("Run", { className: "name" },
			comparePick(t), link, " ", el("span", { className: "run-id" }, `#${t.id}`),
			t.description ? el("span", { className: "description" }, t.description) : null,
			tagChips(t)),
		cell("Started", {}, timeElement(t.start_time, dateShort)),
		cell("Duration", { className: "num duration" }, fmtSeconds(t.duration)),
		cell("Status", { className: "state" }, badge(t.active)),
		cell("Above threshold", { className: "num above" },
			...(measured ? [fmtAbove(t).join(""), meter] : ["–"])),
		cell("Peak CPU", { className: "num peak" }, fmtPercent(t.max_cpu_usage)));
	row.dataset.id = t.id;
	return row;
}

function listRender(data) {
	// A refresh must not throw away the keyboard's place in the table.
	const focused = document.activeElement?.closest?.("#runs-body tr")?.dataset.id;
	const what = document.activeElement?.dataset?.focusKey ?? "a";
	$("runs-body").replaceChildren(...data.tests.map(runRow));
	if (focused) {
		const row = $("runs-body").querySelector(`tr[data-id="${focused}"]`);
		(row?.querySelector(`[data-focus-key="${CSS.escape(what)}"]`) ??
			row?.querySelector("a"))?.focus();
	}

	const first = list.before === null;
	const none = first && data.tests.length === 0;
	$("runs-empty").hidden = !(none && !filterActive());
	$("runs-nomatch").hidden = !(none && filterActive());
	$("runs").hidden = data.tests.length === 0;
	$("runs-newer").hidden = first;
	$("runs-older").hidden = data.next === null;
	$("runs-older").dataset.next = data.next ?? "";
	$("runs-page").textContent = first && data.next === null ? "" : `Page ${list.newer.length + 1}`;
	compareBar();
}

// Another page of the list: the same view, so only the list reloads.
function listGo(before) {
	clearTimeout(pollTimer);
	list.before = before;
	listLoad(++seq);
}

function onOlder() {
	list.newer.push(list.before);
	listGo(Number($("runs-older").dataset.next));
}

function onNewer() {
	listGo(list.newer.pop() ?? null);
}

function showHome(session, mySeq) {
	showView("home");
	filterShow();
	showToken(session);
	// The token is what one logs in for: open right after logging in,
	// folded away when coming back to the list.
	$("token-panel").open = justLoggedIn;
	if (justLoggedIn) $("token-heading").focus();
	listLoad(mySeq);
}

// ---- logged in: the list's filters and the runs' tags ------------------------------

// What the tracker takes in a tag filter (SPEC 6.3), checked here first so
// that the form can say what is wrong beside the field.
const TAG_KEY = /^[A-Za-z0-9_./-]{1,64}$/;
const TAG_VALUE_MAX = 256; // characters
const TAGS_MAX = 32; // tags one filter may name
const TAGS_FIRST = ["branch", "commit"]; // a row shows these first…
const TAGS_SHOWN = 2; // …and this many tags, the rest behind "+N"

// The filter on screen, as the address gives it: an exact name ("": any) and
// tags as the API takes them, "KEY:VALUE", bad ones included (the tracker's
// 400 says what is wrong with them).
let listFilter = { name: "", tags: [] };
const tagsOpen = new Set(); // runs (ids) whose row shows every tag

const filterActive = () => listFilter.name !== "" || listFilter.tags.length > 0;

// The filter the address names: #/?name=N&tag=KEY:VALUE&tag=…
function filterFromHash() {
	const m = /^#\/?\?(.*)$/.exec(location.hash);
	const q = new URLSearchParams(m ? m[1] : "");
	return { name: q.get("name") ?? "", tags: q.getAll("tag") };
}

// A query value for the address: ":" and "/" mean nothing there, and read
// better as they are.
const hashPart = (s) => encodeURIComponent(s).replace(/%3A/g, ":").replace(/%2F/g, "/");

// The address of the list filtered by `f`.
function filterHash(f) {
	const parts = [];
	if (f.name !== "") parts.push(`name=${hashPart(f.name)}`);
	for (const tag of f.tags) parts.push(`tag=${hashPart(tag)}`);
	return parts.length ? `#/?${parts.join("&")}` : "#/";
}

// Add the filter on screen to a query of GET /test.
function filterQuery(q) {
	if (listFilter.name !== "") q.set("name", listFilter.name);
	for (const tag of listFilter.tags) q.append("tag", tag);
}

// "KEY:VALUE" → [key, value], split at the first colon as the tracker does;
// the value is null when there is no colon.
function tagSplit(tag) {
	const i = tag.indexOf(":");
	return i < 0 ? [tag, null] : [tag.slice(0, i), tag.slice(i + 1)];
}

// `f` with the tag key:value, instead of any other value of that key (a run
// has one value a key, and the tracker refuses a key twice).
function filterWithTag(f, key, value) {
	const tags = f.tags.filter((t) => tagSplit(t)[0] !== key);
	return { name: f.name, tags: [...tags, `${key}:${value}`] };
}

// `f` without the tag `tag` ("KEY:VALUE"), or without the name when tag is null.
function filterWithout(f, tag) {
	return tag === null ? { name: "", tags: f.tags }
		: { name: f.name, tags: f.tags.filter((t) => t !== tag) };
}

// Why `text` is not a tag filter the tracker takes, or "" when it is one.
function tagProblem(text) {
	const [key, value] = tagSplit(text);
	if (value === null) return "Write the tag as KEY:VALUE, e.g. branch:main.";
	if (key === "") return "Put the tag's key before the colon, e.g. branch:main.";
	if (!TAG_KEY.test(key)) {
		return `“${key.slice(0, 64)}” is not a tag key: use 1 to 64 letters, digits, _ . / or -.`;
	}
	if ([...value].length > TAG_VALUE_MAX) {
		return `A tag's value is at most ${TAG_VALUE_MAX} characters.`;
	}
	return "";
}

// Take the filter from the address; a new one starts at the first page,
// with nothing of the old one's runs on screen while it loads.
function filterShow() {
	const f = filterFromHash();
	if (f.name !== listFilter.name || f.tags.join("\n") !== listFilter.tags.join("\n")) {
		listFilter = f;
		list.before = null;
		list.newer = [];
		$("runs-body").replaceChildren();
		for (const id of ["runs", "runs-empty", "runs-nomatch", "runs-error"]) $(id).hidden = true;
		compareBar();
	}
	const form = $("filter-form");
	clearErrors(form);
	$("filter-name").value = listFilter.name;
	$("filter-tag").value = "";
	const chips = [];
	if (listFilter.name !== "") chips.push(filterChip("name", listFilter.name, null));
	for (const tag of listFilter.tags) {
		const [key, value] = tagSplit(tag);
		chips.push(filterChip(key, value ?? "", tag));
	}
	$("filter-list").replaceChildren(...chips);
	$("filters").hidden = !filterActive();
	// "← Your runs" goes back to the list as it was.
	for (const a of document.querySelectorAll(".back a")) a.href = filterHash(listFilter);
}

// One filter in force, with a button that removes it (`tag` null: the name).
function filterChip(key, value, tag) {
	const remove = el("button", { type: "button", className: "remove" }, "×");
	remove.setAttribute("aria-label", `Remove the filter ${key}: ${value}`);
	remove.addEventListener("click", () => navigate(filterHash(filterWithout(listFilter, tag))));
	return el("li", { className: "tag on" },
		el("span", { className: "tag-key" }, `${key}:`), " ",
		el("span", { className: "tag-value" }, value), remove);
}

function onFilter(event) {
	event.preventDefault();
	const form = event.currentTarget;
	const tag = $("filter-tag");
	clearErrors(form);
	let f = { name: $("filter-name").value.trim(), tags: listFilter.tags };
	const text = tag.value.trim();
	if (text !== "") {
		let problem = tagProblem(text);
		if (!problem) {
			const [key, value] = tagSplit(text);
			f = filterWithTag(f, key, value);
			if (f.tags.length > TAGS_MAX) problem = `A filter names at most ${TAGS_MAX} tags.`;
		}
		if (problem) {
			fieldError(tag, problem);
			tag.focus();
			return;
		}
	}
	navigate(filterHash(f));
}

// Branch and commit first, then the other keys in order.
function tagOrder([a], [b]) {
	const rank = (k) => (TAGS_FIRST.includes(k) ? TAGS_FIRST.indexOf(k) : TAGS_FIRST.length);
	return rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0);
}

// A run's tags, as buttons that filter the list on them: the first few,
// and the rest behind a "+N" that shows them (named in its tooltip too).
function tagChips(t) {
	const entries = Object.entries(t.tags ?? {}).sort(tagOrder);
	if (entries.length === 0) return null;
	const id = String(t.id);
	const open = tagsOpen.has(id);
	const rest = entries.slice(TAGS_SHOWN);
	const box = el("span", { className: "row-tags" },
		...(open ? entries : entries.slice(0, TAGS_SHOWN)).map(([k, v]) => tagChip(k, v)));
	if (rest.length) {
		const more = el("button", { type: "button", className: "tag more",
			title: rest.map(([k, v]) => `${k}: ${v}`).join("\n") },
		open ? "fewer" : `+${rest.length}`);
		more.setAttribute("aria-expanded", String(open));
		more.setAttribute("aria-label", open ? "Show fewer tags" : `Show ${rest.length} more tags`);
		more.dataset.focusKey = "more";
		more.addEventListener("click", () => {
			if (open) tagsOpen.delete(id);
			else tagsOpen.add(id);
			const again = tagChips(t);
			box.replaceWith(again);
			again.querySelector(".more").focus();
		});
		box.append(more);
	}
	return box;
}

// One tag of a run: pressing it filters the list on it (or stops, when it is
// a filter already).
function tagChip(key, value) {
	const tag = `${key}:${value}`;
	const on = listFilter.tags.includes(tag);
	const short = key === "commit" && /^[0-9a-f]{8,}$/i.test(value)
		? value.slice(0, COMMIT_SHOWN) : value;
	const b = el("button", { type: "button", className: on ? "tag on" : "tag",
		title: on ? `Filtering on ${key}: ${value} (press to stop)`
			: `Show only runs tagged ${key}: ${value}` },
	el("span", { className: "tag-key" }, `${key}:`), " ",
	el("span", { className: "tag-value" }, short));
	b.setAttribute("aria-pressed", String(on));
	b.dataset.focusKey = `tag:${key}`;
	b.addEventListener("click", () => navigate(filterHash(on
		? filterWithout(listFilter, tag) : filterWithTag(listFilter, key, value))));
	return b;
}

// ---- logged in: one run ------------------------------------------------------------

// The run on screen: its test object, its samples as the chart's columns.
let run = null;

function runReset(id) {
	chartDestroy();
	run = {
		id,
		test: null,
		xs: [], // sample timestamps, seconds
		ys: [], // cpu_usage, percent
		mem: [], // mem_usage, percent; null where a sample has none
		above: [], // above_threshold
		last: null, // the last timestamp, as the API wrote it (for `after`)
	};
}

// All samples after `after` (null: from the start), a page at a time.
async function samplesFetch(id, after) {
	const out = [];
	for (;;) {
		const q = new URLSearchParams({ limit: USAGE_PAGE });
		if (after) q.set("after", after);
		const { samples } = await authed("GET", `/test/${id}/usage?${q}`);
		for (const s of samples) out.push(s);
		if (samples.length < USAGE_PAGE) return out;
		after = samples[samples.length - 1].timestamp;
	}
}

function samplesAdd(samples) {
	for (const s of samples) {
		run.xs.push(parseTs(s.timestamp));
		run.ys.push(s.cpu_usage * 100);
		run.mem.push(typeof s.mem_usage === "number" ? s.mem_usage * 100 : null);
		run.above.push(s.above_threshold);
		run.last = s.timestamp;
	}
}

function runDetails(t) {
	run.test = t;
	$("run-name").textContent = t.name;
	$("run-state").replaceWith(Object.assign(badge(t.active), { id: "run-state" }));
	$("run-id").textContent = `#${t.id}`;
	$("run-description").textContent = t.description;
	$("run-description").hidden = t.description === "";
	$("run-duration").textContent = fmtSeconds(t.duration);
	const [above, share] = fmtAbove(t);
	$("run-above").replaceChildren(above, el("span", { className: "share" }, share));
	$("run-peak").textContent = fmtPercent(t.max_cpu_usage);
	$("run-mean").textContent = fmtPercent(t.mean_cpu_usage);
	$("run-threshold").textContent = fmtPercent(t.threshold);
	$("run-samples").textContent = String(t.samples);
	$("run-when").replaceChildren("Started ", timeElement(t.start_time),
		...(t.end_time ? [", ended ", timeElement(t.end_time)] : [", still running"]));
	$("run-live").hidden = !t.active;
	$("run").dataset.active = t.active;
	document.title = `${t.name} #${t.id} · grasshopper`;
	runMore(t);
}

async function showRun(id, mySeq, focus) {
	showView("run");
	runReset(id);
	$("run").hidden = true;
	$("run-missing").hidden = true;
	$("run-error").hidden = true;
	$("csv-status").textContent = "";
	historyReset();

	// Ids are decimal numbers; anything else is as unknown as another
	// user's run, which the API answers 404 too.
	let t;
	try {
		if (!/^[1-9][0-9]{0,18}$/.test(id)) throw new ApiError(404, "not_found", "no such test");
		t = await authed("GET", `/test/${id}`);
		samplesAdd(await samplesFetch(id, null));
	} catch (e) {
		if (mySeq !== seq) return;
		if (e.status === 404) {
			$("missing-id").textContent = id;
			$("run-missing").hidden = false;
			$("missing-heading").focus();
			document.title = "Run not found · grasshopper";
		} else {
			$("run-error").textContent = `Could not load run ${id}: ${e.message}`;
			$("run-error").hidden = false;
		}
		return;
	}
	if (mySeq !== seq) return;
	$("run").hidden = false;
	runDetails(t);
	chartDraw();
	historyLoad(t, mySeq);
	if (focus) $("run-name").focus();
	if (t.active) poll(mySeq, RUN_POLL_MS, () => runFollow(mySeq));
}

// An active run: its numbers and the samples that arrived since.
async function runFollow(mySeq) {
	try {
		const t = await authed("GET", `/test/${run.id}`);
		const fresh = await samplesFetch(run.id, run.last);
		if (mySeq !== seq) return;
		samplesAdd(fresh);
		// Samples delivered late (a client's retries) can land before the
		// last one we have: then the count differs, and we read all again.
		if (t.samples !== run.xs.length || !t.active) {
			const all = await samplesFetch(run.id, null);
			if (mySeq !== seq) return;
			run.xs = [];
			run.ys = [];
			run.mem = [];
			run.above = [];
			samplesAdd(all);
		}
		runDetails(t);
		chartDraw();
		if (!t.active) {
			historyLoad(t, mySeq); // stopped: now it has a baseline
			return;
		}
	} catch (e) {
		if (mySeq !== seq) return;
		$("csv-status").textContent = `Live update failed (${e.message}); retrying.`;
	}
	poll(mySeq, RUN_POLL_MS, () => runFollow(mySeq));
}

// ---- the chart -----------------------------------------------------------------------

let chart = null; // { u: uPlot, resize: ResizeObserver, memory: has a memory series }
let chartLead = false; // the chart's data starts with a lead point

// The points uPlot marks: every sample's, not the lead point's.
const pointsAfterLead = (u, i, show) => (show && chartLead
	? u.data[0].map((x, j) => j).slice(1) : null);

function chartDestroy() {
	if (!chart) return;
	chart.resize.disconnect();
	chart.u.destroy();
	chart = null;
}

// The x axis runs from the start to the end of the run (or to now).
function chartRange() {
	const t = run.test;
	const start = parseTs(t.start_time);
	let lo = start;
	let hi = t.end_time ? parseTs(t.end_time) : start + t.duration;
	if (run.xs.length) {
		lo = Math.min(lo, run.xs[0]);
		hi = Math.max(hi, run.xs[run.xs.length - 1]);
	}
	return [lo, hi > lo ? hi : lo + 1];
}

const cssVar = (name) =>
	getComputedStyle(document.documentElement).getPropertyValue(name).trim();

// A chart's axes, in the page's colours.
function chartAxis() {
	const grid = cssVar("--chart-grid");
	return { stroke: cssVar("--muted"), grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
}

// The time above threshold, shaded under everything, and the threshold, a
// dashed line over everything. Each sample covers the interval since the
// previous one (the run's start for the first: SPEC 2), exactly what
// time_above_threshold adds up; the sum is left on the chart's element.
function thresholdPlugin(colors) {
	function shade(u) {
		const { ctx } = u;
		const { left, top, width, height } = u.bbox;
		let prev = parseTs(run.test.start_time);
		let spanFrom = null;
		let spanTo = null;
		let total = 0;
		const flush = () => {
			if (spanFrom === null) return;
			const x0 = u.valToPos(spanFrom, "x", true);
			const x1 = u.valToPos(spanTo, "x", true);
			ctx.fillRect(x0, top, Math.max(1, x1 - x0), height);
		};
		ctx.save();
		ctx.beginPath();
		ctx.rect(left, top, width, height);
		ctx.clip();
		ctx.fillStyle = colors.above;
		for (let i = 0; i < run.xs.length; i++) {
			const t = run.xs[i];
			if (run.above[i] && t > prev) {
				total += t - prev;
				if (spanFrom !== null && prev <= spanTo) {
					spanTo = t;
				} else {
					flush();
					spanFrom = prev;
					spanTo = t;
				}
			}
			prev = t;
		}
		flush();
		ctx.restore();
		u.root.parentElement.dataset.aboveSeconds = String(Math.round(total * 1e6) / 1e6);
	}

	function line(u) {
		const { ctx } = u;
		const { left, width } = u.bbox;
		const y = Math.round(u.valToPos(run.test.threshold * 100, "y", true)) + 0.5;
		const px = devicePixelRatio || 1;
		ctx.save();
		ctx.strokeStyle = colors.threshold;
		ctx.lineWidth = 2 * px;
		ctx.setLineDash([8 * px, 5 * px]);
		ctx.beginPath();
		ctx.moveTo(left, y);
		ctx.lineTo(left + width, y);
		ctx.stroke();
		ctx.setLineDash([]);
		ctx.fillStyle = colors.threshold;
		ctx.font = `600 ${12 * px}px system-ui, sans-serif`;
		ctx.textAlign = "right";
		ctx.textBaseline = "bottom";
		ctx.fillText(`threshold ${fmtPercent(run.test.threshold)}`, left + width - 4 * px, y - 3 * px);
		ctx.restore();
		u.root.parentElement.dataset.thresholdY = String(y / px);
	}

	return { hooks: { drawClear: [shade], draw: [line] } };
}

function chartHeight() {
	return window.matchMedia("(max-width: 40rem)").matches ? 220 : 320;
}

function chartDraw() {
	const box = $("chart");
	const message = $("chart-message");
	box.dataset.points = String(run.xs.length);
	box.dataset.threshold = String(run.test.threshold);
	if (typeof window.uPlot !== "function") {
		message.textContent = "The chart library (uPlot) is not installed with this " +
			"page: run 'npm ci', then 'make', where the page was built. The numbers " +
			"above and the CSV download work without it.";
		message.hidden = false;
		return;
	}
	message.hidden = run.xs.length > 0;
	message.textContent = run.test.active
		? "No samples yet: they appear here as grasshopper sends them."
		: "This run has no samples.";

	// A sample covers the interval before it, the first one from the run's
	// start: a lead point at the start carries the first sample's value so
	// that the first interval is drawn too (it has no marker of its own).
	const start = parseTs(run.test.start_time);
	const lead = run.xs.length > 0 && run.xs[0] > start;
	const xs = lead ? [start, ...run.xs] : run.xs;
	const ys = lead ? [run.ys[0], ...run.ys] : run.ys;
	const threshold = run.test.threshold * 100;
	const memory = run.mem.some((v) => v !== null);
	const data = [xs, ys, ...(memory ? [lead ? [run.mem[0], ...run.mem] : run.mem] : []),
		xs.map(() => threshold)];
	chartLead = lead;
	box.dataset.memory = String(memory);
	$("caption-mem").hidden = !memory;
	box.setAttribute("aria-label", memory ? "CPU and memory usage over time" : "CPU usage over time");
	if (chart && chart.memory === memory) {
		chart.u.setData(data);
		return;
	}
	chartDestroy(); // memory appeared on a live run: one more series

	const colors = {
		cpu: cssVar("--chart-cpu"),
		fill: cssVar("--chart-cpu-fill"),
		memory: cssVar("--chart-mem"),
		threshold: cssVar("--chart-threshold"),
		above: cssVar("--chart-above"),
	};
	const axis = chartAxis();
	const percent = (u, v) => (v === null ? "–" : `${v.toFixed(1)}%`);
	const u = new window.uPlot({
		width: Math.max(200, box.clientWidth),
		height: chartHeight(),
		scales: {
			x: { time: true, range: () => chartRange() },
			y: { range: [0, 100] },
		},
		axes: [
			axis,
			{ ...axis, size: 48, values: (u, ticks) => ticks.map((v) => `${v}%`) },
		],
		series: [
			{},
			{
				label: "CPU",
				stroke: colors.cpu,
				fill: colors.fill,
				width: 2,
				paths: window.uPlot.paths.stepped({ align: -1 }),
				points: { filter: pointsAfterLead },
				value: percent,
			},
			...(memory ? [memorySeries(colors, percent)] : []),
			// The threshold, in the legend; the plugin draws its line.
			{ label: "Threshold", stroke: colors.threshold, paths: () => null,
				points: { show: false }, value: percent },
		],
		cursor: { drag: { x: false, y: false } },
		plugins: [thresholdPlugin(colors)],
	}, data, box);
	const resize = new ResizeObserver(() => {
		u.setSize({ width: Math.max(200, box.clientWidth), height: chartHeight() });
	});
	resize.observe(box);
	chart = { u, resize, memory };
}

// The samples as CSV, straight from the API (Accept: text/csv), a page at a
// time, saved as a file: a plain link could not send the Bearer header.
async function onCsv() {
	const button = $("csv");
	const status = $("csv-status");
	const id = run.id;
	button.disabled = true;
	status.textContent = "Preparing the file…";
	try {
		const parts = [];
		let after = null;
		for (;;) {
			const q = new URLSearchParams({ limit: USAGE_PAGE });
			if (after) q.set("after", after);
			const text = await authed("GET", `/test/${id}/usage?${q}`, { accept: "text/csv" });
			const rows = text.split("\r\n").filter((r) => r !== "");
			// Every page starts with the header; keep the first one only.
			parts.push(parts.length ? text.slice(text.indexOf("\r\n") + 2) : text);
			if (rows.length - 1 < USAGE_PAGE) break;
			after = rows[rows.length - 1].split(",")[0];
		}
		const blob = new Blob(parts, { type: "text/csv" });
		const url = URL.createObjectURL(blob);
		const a = el("a", { href: url, download: `grasshopper-run-${id}.csv` });
		document.body.append(a);
		a.click();
		a.remove();
		setTimeout(() => URL.revokeObjectURL(url), 60000);
		status.textContent = `Saved grasshopper-run-${id}.csv.`;
	} catch (e) {
		status.textContent = `Could not download the samples: ${e.message}`;
	} finally {
		button.disabled = false;
	}
}

// ---- one run: memory, the command, tags ------------------------------------------------

// Tags the client detects, in this order; any others follow by name.
const TAG_ORDER = ["ci", "repo", "branch", "commit", "job_url", "host", "cpus", "mem_total", "kernel"];

// What runDetails leaves to this section: the memory figures, the command's
// and the tags.
function runMore(t) {
	const memory = t.max_mem_usage !== null && t.max_mem_usage !== undefined;
	$("run-mem-peak").textContent = fmtPercent(t.max_mem_usage);
	$("run-mem-mean").textContent = fmtPercent(t.mean_mem_usage);
	$("run-mem-peak-item").hidden = !memory;
	$("run-mem-mean-item").hidden = !memory;
	commandShow(t.command);
	tagsShow(t.tags ?? {});
}

// The command's figures, each hidden when not reported (exit_status comes
// from newer clients only); the whole section when none was.
function commandShow(c) {
	const figures = [
		["user", c?.user_cpu, fmtCpu],
		["system", c?.system_cpu, fmtCpu],
		["rss", c?.max_rss, fmtKiB],
		["exit", c?.exit_status, String],
	];
	let shown = 0;
	for (const [name, value, format] of figures) {
		const known = typeof value === "number";
		$(`command-${name}-item`).hidden = !known;
		$(`command-${name}`).textContent = known ? format(value) : "";
		if (known) shown++;
	}
	const rss = c?.max_rss;
	$("command-rss").title = typeof rss === "number" ? `${rss} KiB` : "";
	$("command-exit").classList.toggle("failed", typeof c?.exit_status === "number" && c.exit_status !== 0);
	$("run-command").hidden = shown === 0;
}

// The run chart's memory series: a line of its own colour, stepped as CPU's.
function memorySeries(colors, percent) {
	return {
		label: "Memory",
		stroke: colors.memory,
		width: 2,
		paths: window.uPlot.paths.stepped({ align: -1 }),
		points: { filter: pointsAfterLead },
		value: percent,
	};
}

// An address the page may link to: http or https only (tags are user input).
function httpUrl(s) {
	try {
		return ["http:", "https:"].includes(new URL(s).protocol);
	} catch {
		return false;
	}
}

// One tag as "key=value", text only: job_url a link, commit shortened.
function tagItem(key, value) {
	let shown = value;
	if (key === "job_url" && httpUrl(value)) {
		shown = el("a", { href: value, rel: "noopener noreferrer", target: "_blank" }, value);
	} else if (key === "commit" && [...value].length > COMMIT_SHOWN) {
		shown = el("abbr", { title: value }, [...value].slice(0, COMMIT_SHOWN).join(""));
	}
	const li = el("li", {}, el("span", { className: "tag-key" }, key), "=",
		el("span", { className: "tag-value" }, shown));
	li.dataset.key = key;
	return li;
}

function tagsShow(tags) {
	const rank = (k) => (TAG_ORDER.includes(k) ? TAG_ORDER.indexOf(k) : TAG_ORDER.length);
	const keys = Object.keys(tags).sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
	$("run-tags").replaceChildren(...keys.map((k) => tagItem(k, String(tags[k]))));
	$("run-tags").hidden = keys.length === 0;
}

// Nothing of the run's tags, baseline or trend left in the hidden view.
function runMoreForget() {
	$("run-tags").replaceChildren();
	historyReset();
}

// ---- one run: against its baseline (SPEC 6.4) ---------------------------------------

const BASELINE_RUNS = 10; // SPEC 6.4's default: the last 10 earlier runs
const BASELINE_LEAST = 3; // fewer are noise, not a baseline (issue 14): no comparison

// "of “make” on branch main": which runs a baseline or trend is made of.
function historyOf(t) {
	const branch = t.tags?.branch;
	return `of “${t.name}” ${branch === undefined ? "without a branch tag" : `on branch ${branch}`}`;
}

// Links to runs, "#12, #15, #17".
function runLinks(ids) {
	return ids.flatMap((id, i) => [i ? ", " : "", el("a", { href: `#/test/${id}` }, `#${id}`)]);
}

// Empty the baseline and the trend: a run is loading, or another one.
function historyReset() {
	trendDestroy();
	trend.runs = [];
	$("baseline-about").textContent = "";
	$("baseline-error").hidden = true;
	$("baseline-table").hidden = true;
	$("baseline-key").hidden = true;
	$("baseline-body").replaceChildren();
	$("trend-about").textContent = "";
	$("trend-error").hidden = true;
	$("trend-box").hidden = true;
	$("trend-points").replaceChildren();
}

let historySeq = 0; // numbers the loads, as seq the routes: a run that stops loads again

// The baseline and the trend of run t, each on its own: one failing leaves
// the other.
function historyLoad(t, mySeq) {
	historyReset();
	const mine = ++historySeq;
	const current = () => mySeq === seq && mine === historySeq;
	baselineLoad(t, current);
	trendLoad(t, current);
}

// The figures compared with the baseline: the run's value, the baseline's
// key and how both are written. More of any of them is heavier.
const BASELINE_FIGURES = [
	["Duration", (t) => t.duration, "duration", fmtSeconds],
	["Above threshold", (t) => t.time_above_threshold, "time_above_threshold", fmtSeconds],
	["Peak CPU", (t) => t.max_cpu_usage, "max_cpu_usage", fmtPercent],
	["Peak memory", (t) => t.max_mem_usage, "max_mem_usage", fmtPercent],
	["User CPU time", (t) => t.command?.user_cpu, "user_cpu", fmtCpu],
	["System CPU time", (t) => t.command?.system_cpu, "system_cpu", fmtCpu],
	["Max resident set size", (t) => t.command?.max_rss, "max_rss", fmtKiB],
];

// The change from `base` to `value` as an element: "▲ +12%" (worse), "▼ −3.5%"
// (better), "±0%"; "–" when there is nothing to divide by.
function diffElement(value, base) {
	if (typeof value !== "number" || typeof base !== "number" || base <= 0) {
		return el("span", { className: "diff" }, "–");
	}
	const pct = ((value - base) / base) * 100;
	const digits = Math.abs(pct) < 10 ? 1 : 0;
	const shown = Math.abs(pct).toFixed(digits);
	if (Number(shown) === 0) return el("span", { className: "diff same" }, "±0%");
	const worse = pct > 0;
	const arrow = el("span", {}, worse ? "▲ " : "▼ ");
	arrow.setAttribute("aria-hidden", "true");
	return el("span", { className: worse ? "diff worse" : "diff better" }, arrow,
		`${worse ? "+" : "−"}${shown}%`,
		el("span", { className: "visually-hidden" }, worse ? " more" : " less"));
}

function baselineRow([label, of, key, format], t, b) {
	const value = of(t) ?? null;
	const base = b[key] ?? null;
	if (value === null && base === null) return null; // neither has it: say nothing
	const row = el("tr", {},
		cell("Figure", { className: "name" }, label),
		cell("This run", { className: "num run-value" }, format(value)),
		cell("Baseline (median)", { className: "num base-value" }, format(base)),
		cell("Difference", { className: "num difference" }, diffElement(value, base)));
	row.dataset.figure = key;
	return row;
}

// current(): whether the answer is still wanted.
async function baselineLoad(t, current) {
	const about = $("baseline-about");
	if (t.active) {
		about.textContent = "The comparison with earlier runs is shown when this run has stopped.";
		return;
	}
	let b;
	try {
		b = await authed("GET", `/test/${t.id}/baseline?runs=${BASELINE_RUNS}`);
	} catch (e) {
		if (!current()) return;
		about.textContent = "";
		$("baseline-error").textContent = `Could not load the baseline: ${e.message}`;
		$("baseline-error").hidden = false;
		return;
	}
	if (!current()) return;
	const ids = [...b.runs].sort((x, y) => x - y);
	$("baseline").dataset.count = String(b.count);
	const of = historyOf(t);
	if (b.count === 0) {
		about.textContent = `No earlier stopped runs ${of}: nothing to compare with yet.`;
		return;
	}
	if (b.count < BASELINE_LEAST) {
		about.replaceChildren("The baseline is too small to compare with: only " +
			`${b.count} earlier stopped run${b.count === 1 ? "" : "s"} ${of} (`,
		...runLinks(ids), `); at least ${BASELINE_LEAST} are needed.`);
		return;
	}
	about.replaceChildren(`Against the median of the ${b.count} earlier stopped runs ${of}: `,
		...runLinks(ids), ".");
	$("baseline-body").replaceChildren(...BASELINE_FIGURES.map((f) => baselineRow(f, t, b))
		.filter((r) => r !== null));
	$("baseline-table").hidden = false;
	$("baseline-key").hidden = false;
}

// ---- one run: the trend of a figure across the runs of its name and branch -----------

const TREND_RUNS = 30;  // points on the trend chart
const TREND_PAGE = 100; // runs asked for at a time
const TREND_PAGES = 5;  // runs without a branch tag are picked from at most this many pages
const TREND_HEIGHT = 180;

// The command's user plus system CPU seconds; null unless both were reported.
function commandCpu(t) {
	const c = t.command;
	return c && typeof c.user_cpu === "number" && typeof c.system_cpu === "number"
		? c.user_cpu + c.system_cpu : null;
}

// The figures the trend can show: [label, value of a test, the y axis's unit].
const TREND_FIGURES = {
	duration: ["Duration", (t) => t.duration, "s"],
	above: ["Time above threshold", (t) => t.time_above_threshold, "s"],
	memory: ["Peak memory", (t) => (typeof t.max_mem_usage === "number" ? t.max_mem_usage * 100 : null), "%"],
	command: ["Command CPU seconds", commandCpu, "s"],
};

// The trend on screen: its runs oldest first, the run it is for, its chart.
const trend = { runs: [], id: null, u: null, resize: null };

function trendDestroy() {
	if (!trend.u) return;
	trend.resize.disconnect();
	trend.u.destroy();
	trend.u = null;
}

// The last stopped runs of t's name and branch, newest first, up to
// `before` (exclusive; null: the newest). The API filters by tag; runs
// without a branch tag are picked out here, as no filter says "none".
async function trendFetch(t, before) {
	const branch = t.tags?.branch;
	const q = new URLSearchParams({ name: t.name, limit: TREND_PAGE });
	if (branch !== undefined) q.append("tag", `branch:${branch}`);
	const out = [];
	for (let page = 0; page < TREND_PAGES && out.length < TREND_RUNS; page++) {
		if (before !== null) q.set("before", before);
		const data = await authed("GET", `/test?${q}`);
		out.push(...data.tests.filter((r) => !r.active &&
			(branch !== undefined || r.tags?.branch === undefined)));
		if (data.next === null) break;
		before = data.next;
	}
	return out.slice(0, TREND_RUNS);
}

async function trendLoad(t, current) {
	let runs;
	try {
		runs = await trendFetch(t, null);
		// An older run: the runs up to it rather than the newest ones.
		if (!t.active && !runs.some((r) => r.id === t.id)) runs = await trendFetch(t, t.id + 1);
	} catch (e) {
		if (!current()) return;
		$("trend-error").textContent = `Could not load the trend: ${e.message}`;
		$("trend-error").hidden = false;
		return;
	}
	if (!current()) return;
	trend.runs = runs.reverse();
	trend.id = t.id;
	if (runs.length === 0) {
		$("trend-about").textContent = `No stopped runs ${historyOf(t)} yet.`;
		return;
	}
	$("trend-about").replaceChildren(`The last ${runs.length} stopped ` +
		`run${runs.length === 1 ? "" : "s"} ${historyOf(t)}, oldest first` +
		(runs.some((r) => r.id === t.id) ? "; this one is ringed." : "."));
	$("trend-box").hidden = false;
	trendDraw();
}

// One run of the trend: a link to it and its value, "#12 3.1 s"; this run is
// the current one.
function trendPoint(r, value, format) {
	const a = el("a", { href: `#/test/${r.id}` }, `#${r.id}`);
	if (r.id === trend.id) a.setAttribute("aria-current", "page");
	return el("li", {}, a, " ", el("span", { className: "trend-value" },
		value === null ? "–" : format(value)));
}

// The trend of the figure chosen, drawn again from the runs already read.
function trendDraw() {
	if (trend.runs.length === 0) return;
	const [label, of, unit] = TREND_FIGURES[$("trend-select").value] ?? TREND_FIGURES.duration;
	const format = unit === "%" ? (v) => fmtPercent(v / 100) : fmtSeconds;
	const runs = trend.runs;
	const values = runs.map((r) => (typeof of(r) === "number" ? of(r) : null));
	const here = runs.findIndex((r) => r.id === trend.id);
	const box = $("trend-chart");
	const present = values.filter((v) => v !== null).length;
	box.dataset.points = String(present);
	box.dataset.runs = String(runs.length);
	box.dataset.current = String(here);
	$("trend-points").replaceChildren(...runs.map((r, i) => trendPoint(r, values[i], format)));
	$("trend-message").textContent = `None of these runs has a value for “${label}”.`;
	$("trend-message").hidden = present > 0;
	trendDestroy();
	if (typeof window.uPlot !== "function") return; // chartDraw says why
	trend.u = trendChart(box, runs, values, here, label, unit, format);
	trend.resize = new ResizeObserver(() => {
		trend.u?.setSize({ width: Math.max(200, box.clientWidth), height: TREND_HEIGHT });
	});
	trend.resize.observe(box);
}

// The uPlot of the trend: a point per run, x its place (0 the oldest), a
// ring around run `here`, a click on the plot goes to the nearest run.
function trendChart(box, runs, values, here, label, unit, format) {
	const colors = {
		line: cssVar("--chart-cpu"),
		ring: cssVar("--text"),
	};
	const axis = chartAxis();
	const ring = (u) => {
		if (here < 0 || values[here] === null) return;
		const px = devicePixelRatio || 1;
		const { ctx } = u;
		ctx.save();
		ctx.strokeStyle = colors.ring;
		ctx.lineWidth = 2 * px;
		ctx.beginPath();
		ctx.arc(u.valToPos(here, "x", true), u.valToPos(values[here], "y", true), 8 * px, 0, 2 * Math.PI);
		ctx.stroke();
		ctx.restore();
	};
	const max = Math.max(0, ...values.filter((v) => v !== null));
	const u = new window.uPlot({
		width: Math.max(200, box.clientWidth),
		height: TREND_HEIGHT,
		legend: { show: false },
		scales: {
			x: { time: false, range: () => [-0.5, runs.length - 0.5] },
			y: { range: () => [0, unit === "%" ? Math.max(1, Math.min(100, max * 1.15)) : (max * 1.15 || 1)] },
		},
		axes: [
			{ ...axis, incrs: [1, 2, 5, 10], values: (u, ticks) =>
				ticks.map((i) => (Number.isInteger(i) && runs[i] ? `#${runs[i].id}` : "")) },
			{ ...axis, size: 64, values: (u, ticks) => ticks.map((v) => (unit === "%" ? `${v}%` : `${v} s`)) },
		],
		series: [
			{},
			{ label, stroke: colors.line, width: 1.5, spanGaps: true,
				points: { show: true, size: 7, fill: colors.line }, value: (u, v) => (v === null ? "–" : format(v)) },
		],
		cursor: { drag: { x: false, y: false }, y: false },
		hooks: { draw: [ring] },
	}, [runs.map((r, i) => i), values], box);
	u.over.addEventListener("click", () => {
		const i = u.cursor.idx;
		if (i !== null && i !== undefined && runs[i]) navigate(`#/test/${runs[i].id}`);
	});
	u.over.title = "Click a point to open its run";
	return u;
}

// ---- logged in: named tokens, the password, log out everywhere -----------------

// Ask before what cannot be undone, in the page's own modal dialog (Escape or
// Cancel says no). Resolves to true when the user chose `action`.
function confirmAction(message, action) {
	const dialog = $("confirm");
	$("confirm-message").textContent = message;
	$("confirm-ok").textContent = action;
	dialog.returnValue = "";
	dialog.showModal();
	$("confirm-cancel").focus(); // the safe answer is the default one
	return new Promise((resolve) => {
		dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"),
			{ once: true });
	});
}

// Forget a newly created token: it is shown once, kept in no variable or
// storage, and leaves the page with Done or with any change of view.
function createdClear() {
	$("created-token").value = "";
	$("created-name").textContent = "";
	$("created-status").textContent = "";
	$("token-created").hidden = true;
}

function tokenRow(t) {
	const revoke = el("button", { type: "button", className: "secondary small revoke" }, "Revoke");
	revoke.setAttribute("aria-label", `Revoke ${t.name}`);
	revoke.addEventListener("click", () => onRevoke(t));
	const expired = parseTs(t.expires_at) <= Date.now() / 1000;
	const row = el("tr", {},
		cell("Name", { className: "name" }, t.name),
		cell("Created", { className: "created-at" }, timeElement(t.created_at, dateShort)),
		cell("Expires", { className: expired ? "expires expired" : "expires" },
			expired ? "expired " : null, relativeElement(t.expires_at)),
		cell("Last used", { className: "last-used" },
			t.last_used_at ? relativeElement(t.last_used_at) : "never"),
		cell("", { className: "revoke-cell" }, revoke));
	row.dataset.id = t.id;
	return row;
}

async function tokensLoad(mySeq) {
	let data;
	try {
		data = await authed("GET", "/tokens");
	} catch (e) {
		if (mySeq !== seq) return;
		$("tokens-error").textContent = `Could not load your tokens: ${e.message}`;
		$("tokens-error").hidden = false;
		return;
	}
	if (mySeq !== seq) return;
	$("tokens-error").hidden = true;
	$("tokens-body").replaceChildren(...data.tokens.map(tokenRow));
	$("tokens-empty").hidden = data.tokens.length > 0;
	$("tokens").hidden = data.tokens.length === 0;
}

function onTokenCreate(event) {
	event.preventDefault();
	const form = event.currentTarget;
	const name = $("token-name");
	clearErrors(form);
	createdClear();
	$("tokens-status").textContent = "";
	if (name.value.trim() === "") {
		fieldError(name, "Give the token a name: what it is for.");
		name.focus();
		return;
	}
	const mySeq = seq;
	busy(form, async () => {
		let created;
		try {
			created = await authed("POST", "/tokens", { body: {
				name: name.value.trim(),
				expires_in: Number($("token-lifetime").value),
			} });
		} catch (e) {
			if (e.code === "invalid_field" && /^name\b/.test(e.message)) {
				fieldError(name, asSentence(e.message));
				name.focus();
			} else {
				formError(form, e.message);
			}
			return;
		}
		if (mySeq !== seq) return; // the user moved on: show it nowhere
		form.reset();
		$("created-name").textContent = created.name;
		$("created-token").value = created.token;
		$("token-created").hidden = false;
		$("created-heading").focus();
		await tokensLoad(mySeq);
	});
}

function onCreatedDone() {
	createdClear();
	$("token-name").focus();
}

async function onRevoke(t) {
	const yes = await confirmAction(`Revoke the token “${t.name}”? Whatever uses it ` +
		"is refused from now on. This cannot be undone.", "Revoke");
	if (!yes) return;
	const mySeq = seq;
	const status = $("tokens-status");
	try {
		await authed("DELETE", `/tokens/${encodeURIComponent(t.id)}`);
		status.textContent = `Revoked “${t.name}”.`;
	} catch (e) {
		if (mySeq !== seq) return;
		status.textContent = e.status === 404 ? `“${t.name}” was already gone.`
			: `Could not revoke “${t.name}”: ${e.message}`;
	}
	if (mySeq !== seq) return;
	await tokensLoad(mySeq);
	$("tokens-heading").focus(); // its row, and the button that had focus, are gone
}

async function onLogoutEverywhere() {
	const yes = await confirmAction("Log out everywhere? Every token you have stops " +
		"working: this tab's, other browsers' and machines', and every named token. " +
		"You will have to log in again, and to give your CI jobs new tokens.",
	"Log out everywhere");
	if (!yes) return;
	const button = $("logout-everywhere");
	$("everywhere-error").textContent = "";
	button.disabled = true;
	try {
		await authed("DELETE", "/auth");
	} catch (e) {
		// A 401 has logged this tab out already (authed); anything else did nothing.
		if (e.status !== 401) $("everywhere-error").textContent =
			`Could not log out everywhere: ${e.message}`;
		return;
	} finally {
		button.disabled = false;
	}
	loggedOut("You are logged out everywhere: every token you had, named ones " +
		"included, has stopped working.");
}

// The browser's checks, with messages of our own beside each field.
function passwordValid(form) {
	const problems = [
		[form.current, form.current.value ? "" : "Enter your current password."],
		[form.new, form.new.value.length >= 8 ? "" : "Use at least 8 characters."],
		[form.repeat, form.repeat.value === form.new.value ? "" : "The two passwords differ."],
	];
	return showProblems(problems);
}

function onPasswordChange(event) {
	event.preventDefault();
	const form = event.currentTarget;
	clearErrors(form);
	$("password-status").textContent = "";
	if (!passwordValid(form)) return;
	const username = sessionLoad()?.username;
	const newPassword = form.new.value;
	busy(form, async () => {
		try {
			await authed("POST", "/users/me/password", { body: {
				password: form.current.value, new_password: newPassword } });
		} catch (e) {
			const input = e.code === "wrong_password" ? form.current
				: e.code === "invalid_field" && /^new_password\b/.test(e.message) ? form.new
					: null;
			if (input) {
				// "new_password must be …": the field as the form names it.
				fieldError(input, asSentence(e.message.replace(/^new_password\b/, "the new password")));
				input.focus();
			} else {
				formError(form, e.message);
			}
			return;
		}
		form.reset();
		// This tab's token stopped working with all the others: the user
		// just typed the new password, so log in again with it.
		try {
			const { token, expires_at } = await api("POST", "/auth", {
				body: { username, password: newPassword } });
			sessionSave({ username, token, expires_at });
		} catch {
			loggedOut("Your password is changed and every token you had has stopped " +
				"working: log in with the new password.");
			return;
		}
		$("password-status").textContent = "Password changed. Every other session " +
			"and every token you had, named ones included, has stopped working; " +
			"this tab is logged in again with the new password.";
		await tokensLoad(seq);
	});
}

function showTokens(session, mySeq) {
	showView("tokens");
	document.title = "Tokens · grasshopper";
	$("password-username").value = session.username;
	// Nothing from before (another user's, after a log-in in this tab) while it loads.
	$("tokens-body").replaceChildren();
	$("tokens").hidden = true;
	$("tokens-empty").hidden = true;
	$("tokens-status").textContent = "";
	$("tokens-error").hidden = true;
	$("password-status").textContent = "";
	$("everywhere-error").textContent = "";
	for (const form of [$("token-form"), $("password-form")]) clearErrors(form);
	$("tokens-heading").focus();
	tokensLoad(mySeq);
}

// ---- logged in: two to five runs side by side (SPEC 6.4) -------------------------

const COMPARE_MIN = 2;
const COMPARE_MAX = 5;
// Points a run is drawn with at most: a longer run is drawn a group of
// samples a point, each at the group's peak, so that five runs of a million
// samples draw as fast as five of two thousand.
const COMPARE_POINTS = 2000;

// The runs ticked in the list, kept across its pages and filters: id → label.
const comparePicked = new Map();
let compareChart = null; // { u: uPlot, resize: ResizeObserver }

// A run's box to tick for comparing.
function comparePick(t) {
	const id = String(t.id);
	const box = el("input", { type: "checkbox", className: "pick", checked: comparePicked.has(id) });
	box.setAttribute("aria-label", `Compare ${t.name} #${id}`);
	box.dataset.focusKey = "pick";
	box.addEventListener("change", () => {
		if (box.checked) comparePicked.set(id, `${t.name} #${id}`);
		else comparePicked.delete(id);
		compareBar();
	});
	return box;
}

// The Compare button, pressable for 2 to 5 ticked runs, and why not.
function compareBar() {
	const n = comparePicked.size;
	const names = [...comparePicked.values()].join(", ");
	$("compare-bar").hidden = n === 0 && $("runs").hidden;
	$("compare-go").disabled = n < COMPARE_MIN || n > COMPARE_MAX;
	$("compare-clear").hidden = n === 0;
	$("compare-picked").textContent =
		n === 0 ? `Tick ${COMPARE_MIN} to ${COMPARE_MAX} runs to compare them on one chart.`
			: n < COMPARE_MIN ? `1 run ticked (${names}): tick at least one more to compare.`
				: n <= COMPARE_MAX ? `${n} runs ticked: ${names}.`
					: `${n} runs ticked: compare at most ${COMPARE_MAX} at a time; ` +
						`untick ${n - COMPARE_MAX}.`;
}

function onCompare() {
	const ids = [...comparePicked.keys()].sort((a, b) => Number(a) - Number(b));
	navigate(`#/compare?ids=${ids.join(",")}`);
}

function onCompareClear() {
	comparePicked.clear();
	for (const box of document.querySelectorAll("#runs-body .pick")) box.checked = false;
	compareBar();
}

function compareDestroy() {
	if (!compareChart) return;
	compareChart.resize.disconnect();
	compareChart.u.destroy();
	compareChart = null;
}

// The ids the address names (#/compare?ids=12,15,19), each once.
function compareIds(query) {
	const raw = new URLSearchParams(query).get("ids") ?? "";
	return [...new Set(raw.split(",").map((s) => s.trim()).filter((s) => s !== ""))];
}

// One run with all its samples: {id, test, samples}; {id, missing} when it
// is not one of the user's (as the run view, a 404); {id, error} otherwise.
async function compareLoad(id) {
	if (!/^[1-9][0-9]{0,18}$/.test(id)) return { id, missing: true };
	try {
		const test = await authed("GET", `/test/${id}`);
		return { id, test, samples: await samplesFetch(id, null) };
	} catch (e) {
		return e.status === 404 ? { id, missing: true } : { id, error: e };
	}
}

function compareSay(message) {
	$("compare-error").textContent = message;
	$("compare-error").hidden = message === "";
}

// "#1", "#1 and #2", "#1, #2 and #3".
function listWords(words) {
	return words.length < 2 ? words.join("")
		: `${words.slice(0, -1).join(", ")} and ${words[words.length - 1]}`;
}

async function showCompare(query, mySeq) {
	showView("compare");
	document.title = "Compare runs · grasshopper";
	$("compare-body").hidden = true;
	$("compare-head").replaceChildren();
	$("compare-rows").replaceChildren();
	$("compare-heading").textContent = "Compare runs";
	compareSay("");
	const ids = compareIds(query);
	if (ids.length < COMPARE_MIN || ids.length > COMPARE_MAX) {
		const named = ids.length === 0 ? "none" : ids.length === 1 ? "only one" : `${ids.length}`;
		compareSay(`A comparison takes ${COMPARE_MIN} to ${COMPARE_MAX} runs, and this ` +
			`address names ${named}. Tick ${COMPARE_MIN} to ${COMPARE_MAX} runs in the list, ` +
			"then press Compare.");
		$("compare-heading").focus();
		return;
	}
	$("compare-status").textContent = "Loading the runs…";
	const results = await Promise.all(ids.map(compareLoad));
	if (mySeq !== seq) return;
	$("compare-status").textContent = "";
	const problems = [];
	const missing = results.filter((r) => r.missing).map((r) => `#${r.id.slice(0, 40)}`);
	if (missing.length) {
		problems.push(`Could not load ${listWords(missing)}: none of your runs has ` +
			`${missing.length === 1 ? "that id" : "those ids"} (another account's, or mistyped).`);
	}
	for (const r of results.filter((x) => x.error)) {
		problems.push(`Could not load run #${r.id}: ${asSentence(r.error.message)}`);
	}
	compareSay(problems.join(" "));
	const runs = results.filter((r) => r.test);
	if (runs.length > 0) {
		$("compare-heading").textContent = runs.length === 1 ? "Compare runs: only one loaded"
			: `Comparing ${runs.length} runs`;
		$("compare-body").hidden = false;
		compareTable(runs);
		compareDraw(runs);
	}
	$("compare-heading").focus();
}

// The figures side by side: [label, the figure of a test as text or an
// element, whether a test has it (a row only when one has)].
const COMPARE_ROWS = [
	["Status", (t) => badge(t.active)],
	["Started", (t) => timeElement(t.start_time, dateShort)],
	["Duration", (t) => fmtSeconds(t.duration)],
	["Above threshold", (t) => (t.samples > 0 ? fmtAbove(t).join("") : "–")],
	["Threshold", (t) => fmtPercent(t.threshold)],
	["Peak CPU", (t) => fmtPercent(t.max_cpu_usage)],
	["Mean CPU", (t) => fmtPercent(t.mean_cpu_usage)],
	["Peak memory", (t) => fmtPercent(t.max_mem_usage), (t) => t.max_mem_usage !== null],
	["Mean memory", (t) => fmtPercent(t.mean_mem_usage), (t) => t.mean_mem_usage !== null],
	["Command user CPU", (t) => fmtCpu(t.command?.user_cpu),
		(t) => typeof t.command?.user_cpu === "number"],
	["Command system CPU", (t) => fmtCpu(t.command?.system_cpu),
		(t) => typeof t.command?.system_cpu === "number"],
	["Command max RSS", (t) => fmtKiB(t.command?.max_rss),
		(t) => typeof t.command?.max_rss === "number"],
	["Samples", (t) => String(t.samples)],
];

function compareTable(runs) {
	const tests = runs.map((r) => r.test);
	$("compare-table").style.setProperty("--runs", String(tests.length));
	$("compare-head").replaceChildren(
		el("th", { scope: "col" }, el("span", { className: "visually-hidden" }, "Figure")),
		...tests.map((t, i) => el("th", { scope: "col" },
			el("span", { className: `swatch c${i + 1}` }),
			el("a", { href: `#/test/${t.id}` }, t.name), " ",
			el("span", { className: "run-id" }, `#${t.id}`))));
	const rows = [];
	for (const [label, figure, has] of COMPARE_ROWS) {
		if (has && !tests.some(has)) continue;
		rows.push(compareRow(label, tests.map(figure), ""));
	}
	// Every tag any of them has, branch and commit first: "–" where one has none.
	const keys = [...new Set(tests.flatMap((t) => Object.keys(t.tags ?? {})))]
		.map((k) => [k]).sort(tagOrder).map(([k]) => k);
	for (const key of keys) {
		rows.push(compareRow(key, tests.map((t) => t.tags?.[key] ?? "–"), "tag-row"));
	}
	$("compare-rows").replaceChildren(...rows);
}

function compareRow(label, values, className) {
	const row = el("tr", { className },
		el("th", { scope: "row" }, label),
		...values.map((v) => el("td", {}, v)));
	row.dataset.figure = label;
	return row;
}

// A run's samples as the chart draws them: seconds since its start, CPU and
// memory in percent (null where a sample has no memory). A lead point at the
// start carries the first sample, which covers the time from the start
// (SPEC 2), as in the run's own chart.
function compareSeries(r) {
	const start = parseTs(r.test.start_time);
	const n = r.samples.length;
	const group = Math.max(1, Math.ceil(n / COMPARE_POINTS));
	const xs = [];
	const cpu = [];
	const mem = [];
	for (let i = 0; i < n; i += group) {
		const end = Math.min(n, i + group);
		let c = 0;
		let m = null;
		for (let j = i; j < end; j++) {
			const s = r.samples[j];
			c = Math.max(c, s.cpu_usage);
			if (typeof s.mem_usage === "number") m = Math.max(m ?? 0, s.mem_usage);
		}
		// To the microsecond, the API's resolution: runs share x values.
		xs.push(Math.round((parseTs(r.samples[end - 1].timestamp) - start) * 1e6) / 1e6);
		cpu.push(c * 100);
		mem.push(m === null ? null : m * 100);
	}
	if (xs.length > 0 && xs[0] > 0) {
		xs.unshift(0);
		cpu.unshift(cpu[0]);
		mem.unshift(mem[0]);
	}
	return { xs, cpu, mem, hasMem: mem.some((v) => v !== null), grouped: group > 1 };
}

// uPlot's columns: every run's x values in one sorted column, from the start
// to the end of the longest run, and each series with nulls at the others'.
function compareData(runs, series) {
	const xs = new Set([0]);
	for (const [i, r] of runs.entries()) {
		xs.add(Math.max(r.test.duration, series[i].xs[series[i].xs.length - 1] ?? 0));
		for (const x of series[i].xs) xs.add(x);
	}
	const column0 = [...xs].sort((a, b) => a - b);
	const at = new Map(column0.map((x, i) => [x, i]));
	const data = [column0];
	const spread = (s, ys) => {
		const out = new Array(column0.length).fill(null);
		s.xs.forEach((x, i) => { out[at.get(x)] = ys[i]; });
		return out;
	};
	for (const s of series) {
		data.push(spread(s, s.cpu));
		if (s.hasMem) data.push(spread(s, s.mem));
	}
	return data;
}

// Seconds on the x axis: "30 s", "2 min", "2:30", "1 h", "1:30 h".
function compareTick(v) {
	if (v < 60) return `${Math.round(v * 10) / 10} s`;
	if (v < 3600) return v % 60 ? `${Math.floor(v / 60)}:${pad2(Math.round(v % 60))}` : `${v / 60} min`;
	const m = Math.round((v % 3600) / 60);
	return m ? `${Math.floor(v / 3600)}:${pad2(m)} h` : `${v / 3600} h`;
}

// Tick spacings, in seconds, that read as time.
const COMPARE_INCRS = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800,
	3600, 7200, 10800, 21600, 43200, 86400];

function compareDraw(runs) {
	const box = $("compare-chart");
	const message = $("compare-chart-message");
	if (typeof window.uPlot !== "function") {
		message.textContent = "The chart library (uPlot) is not installed with this page: " +
			"run 'npm ci', then 'make', where the page was built. The table below works without it.";
		message.hidden = false;
		return;
	}
	message.hidden = true;
	const series = runs.map(compareSeries);
	const data = compareData(runs, series);
	box.dataset.points = String(data[0].length);
	$("compare-grouped").textContent = `A run of more than ${COMPARE_POINTS} samples is ` +
		"drawn a group of samples a point, at each group's peak.";
	$("compare-grouped").hidden = !series.some((s) => s.grouped);

	const axis = {
		stroke: cssVar("--muted"),
		grid: { stroke: cssVar("--chart-grid"), width: 1 },
		ticks: { stroke: cssVar("--chart-grid"), width: 1 },
	};
	const percent = (u, v) => (v === null ? "–" : `${v.toFixed(1)}%`);
	const lines = [{ label: "Since its start", value: (u, v) => (v === null ? "–" : fmtSeconds(v)) }];
	for (const [i, r] of runs.entries()) {
		const line = () => ({
			stroke: cssVar(`--compare-${i + 1}`),
			spanGaps: true,
			points: { show: false },
			paths: window.uPlot.paths.stepped({ align: -1 }),
			value: percent,
		});
		lines.push({ ...line(), label: `${r.test.name} #${r.id} CPU`, width: 2 });
		if (series[i].hasMem) {
			lines.push({ ...line(), label: `${r.test.name} #${r.id} memory`, width: 1.5,
				dash: [6, 4] });
		}
	}
	const u = new window.uPlot({
		width: Math.max(200, box.clientWidth),
		height: chartHeight(),
		scales: { x: { time: false }, y: { range: [0, 100] } },
		axes: [
			{ ...axis, incrs: COMPARE_INCRS, values: (u, ticks) => ticks.map(compareTick) },
			{ ...axis, size: 48, values: (u, ticks) => ticks.map((v) => `${v}%`) },
		],
		series: lines,
		// Memory's key in the legend dashed, as its line.
		legend: { markers: { dash: (u, i) => (u.series[i].dash ? "dashed" : "solid") } },
		cursor: { drag: { x: true, y: false } },
	}, data, box);
	const resize = new ResizeObserver(() => {
		u.setSize({ width: Math.max(200, box.clientWidth), height: chartHeight() });
	});
	resize.observe(box);
	compareChart = { u, resize };
}

// ---- the router ------------------------------------------------------------------------

function route() {
	const mySeq = ++seq;
	clearTimeout(pollTimer);
	chartDestroy();
	trendDestroy();
	compareDestroy();
	document.title = "grasshopper";

	createdClear();
	if ($("confirm").open) $("confirm").close();

	const session = sessionLoad();
	const m = /^#\/test\/([^/?#]*)$/.exec(location.hash);
	const tokens = location.hash === "#/tokens";
	const compare = /^#\/compare(?:\?(.*))?$/.exec(location.hash);
	let message = notice;
	notice = "";
	if (!session && m && !message) message = `Log in to see run ${decodeURIComponent(m[1])}.`;
	if (!session && tokens && !message) message = "Log in to manage your tokens.";
	if (!session && compare && !message) message = "Log in to compare your runs.";
	$("notice").textContent = message;
	$("notice").hidden = message === "";

	if (!session) {
		showWelcome();
		return;
	}
	$("account").hidden = false;
	$("account-user").textContent = session.username;
	if (m) {
		showRun(decodeURIComponent(m[1]), mySeq, justLoggedIn);
	} else if (tokens) {
		showTokens(session, mySeq);
	} else if (compare) {
		showCompare(compare[1] ?? "", mySeq);
	} else {
		showHome(session, mySeq);
	}
	justLoggedIn = false;
}

// Go to `hash`, or show it again when we are there already.
function navigate(hash) {
	if (location.hash === hash) route();
	else location.hash = hash;
}

// Forget the session and go to the log-in form, saying why.
function loggedOut(message) {
	accountForget();
	list.before = null;
	list.newer = [];
	notice = message;
	navigate("#/");
	$("login-username").focus();
}

function onLogout() {
	loggedOut("You are logged out.");
}

function main() {
	$("login-form").addEventListener("submit", onLogin);
	$("signup-form").addEventListener("submit", onSignup);
	for (const button of document.querySelectorAll("button.copy")) {
		button.addEventListener("click", onCopy);
	}
	$("logout").addEventListener("click", onLogout);
	$("runs-older").addEventListener("click", onOlder);
	$("runs-newer").addEventListener("click", onNewer);
	$("filter-form").addEventListener("submit", onFilter);
	$("compare-go").addEventListener("click", onCompare);
	$("compare-clear").addEventListener("click", onCompareClear);
	$("csv").addEventListener("click", onCsv);
	$("trend-select").addEventListener("change", trendDraw);
	$("token-form").addEventListener("submit", onTokenCreate);
	$("created-done").addEventListener("click", onCreatedDone);
	$("password-form").addEventListener("submit", onPasswordChange);
	$("logout-everywhere").addEventListener("click", onLogoutEverywhere);
	$("confirm-ok").addEventListener("click", () => $("confirm").close("ok"));
	$("confirm-cancel").addEventListener("click", () => $("confirm").close("cancel"));
	for (const input of document.querySelectorAll("form input[aria-describedby]")) {
		if ($(`${input.id}-error`)) input.addEventListener("input", () => fieldError(input, ""));
	}
	window.addEventListener("hashchange", route);
	// Nor does a new token come back with the back button (the page cache).
	window.addEventListener("pagehide", createdClear);
	route();
}

main();
