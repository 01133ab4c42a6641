// grasshopper's web page: sign up, log in, and hand the token to the
// grasshopper command. Plain ES module, no dependencies (the page's CSP allows
// only scripts and styles from this origin).

const API = "/api/v1";
const SESSION_KEY = "grasshopper.session";

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

// Call the tracker. Resolves to the JSON body of a 2xx answer, rejects with
// an ApiError for anything else.
async function api(method, path, { body, token } = {}) {
	const headers = { Accept: "application/json" };
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

// ---- views ----------------------------------------------------------------

const $ = (id) => document.getElementById(id);

// Show the token panel; focus its heading when it replaces a form.
function showToken(session, focus = true) {
	$("token-user").textContent = session.username;
	const expiry = $("token-expiry");
	expiry.dateTime = session.expires_at;
	expiry.textContent = new Date(session.expires_at).toLocaleString();
	expiry.title = session.expires_at;
	$("token-text").value = session.token;
	$("command-text").value =
		`GRASSHOPPER_JWT=${session.token} grasshopper --server ${location.origin} -- make test`;
	$("copy-status").textContent = "";
	$("forms").hidden = true;
	$("token-view").hidden = false;
	if (focus) $("token-heading").focus();
}

function showForms() {
	$("token-view").hidden = true;
	$("forms").hidden = false;
	$("token-text").value = "";
	$("command-text").value = "";
}

// Show message under a form (empty to clear it).
function formError(form, message) {
	form.querySelector(".error").textContent = message;
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

// ---- actions ----------------------------------------------------------------

async function logIn(username, password) {
	const { token, expires_at } = await api("POST", "/auth", {
		body: { username, password },
	});
	const session = { username, token, expires_at };
	sessionSave(session);
	showToken(session);
}

// Check a form with the browser's constraints; show the first problem.
function formValid(form) {
	for (const input of form.elements) {
		if (input.willValidate && !input.checkValidity()) {
			const label = form.querySelector(`label[for="${input.id}"]`);
			const name = label ? label.firstChild.textContent.trim() : input.name;
			formError(form, `${name}: ${input.validationMessage}`);
			input.focus();
			return false;
		}
	}
	return true;
}

function onLogin(event) {
	event.preventDefault();
	const form = event.currentTarget;
	formError(form, "");
	if (!formValid(form)) return;
	busy(form, async () => {
		try {
			await logIn(form.username.value, form.password.value);
			form.reset();
		} catch (e) {
			formError(form, e.message);
		}
	});
}

function onSignup(event) {
	event.preventDefault();
	const form = event.currentTarget;
	formError(form, "");
	const confirm = form.confirm;
	confirm.setCustomValidity(
		confirm.value === form.password.value ? "" : "the passwords differ");
	if (!formValid(form)) return;

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
			formError(form, e.message);
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

async function onCopy(event) {
	const field = $(event.currentTarget.dataset.copy);
	const status = $("copy-status");
	try {
		await navigator.clipboard.writeText(field.value);
		status.textContent = "Copied.";
	} catch {
		// No clipboard access (an insecure origin, say): select it instead.
		field.focus();
		field.select();
		status.textContent = "Selected: press Ctrl+C (or ⌘C) to copy.";
	}
}

function onLogout() {
	sessionClear();
	showForms();
	$("login-username").focus();
}

// ---- start ----------------------------------------------------------------

function main() {
	$("login-form").addEventListener("submit", onLogin);
	$("signup-form").addEventListener("submit", onSignup);
	for (const button of document.querySelectorAll("button.copy")) {
		button.addEventListener("click", onCopy);
	}
	$("logout").addEventListener("click", onLogout);
	$("signup-confirm").addEventListener("input", (e) => e.target.setCustomValidity(""));

	const session = sessionLoad();
	if (session) showToken(session, false);
}

main();
