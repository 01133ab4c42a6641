/*
 * The command line and the environment (SPEC section 4), checked whole
 * before anything runs: a bad option is a one-line usage error, exit 2.
 */
#include "client.h"

#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Most of a second the flush at exit may be given, from the environment. */
#define FLUSH_TIMEOUT_MAX 3600.0

enum {
	OPT_NO_COMMAND = 256,
	OPT_REPLAY,
	OPT_TAG,
	OPT_NO_AUTO_TAGS,
	OPT_FAIL_IF_SLOWER,
	OPT_BASELINE_RUNS,
};

static const struct option long_options[] = {
    {"jwt", required_argument, NULL, 'j'},
    {"server", required_argument, NULL, 's'},
    {"interval", required_argument, NULL, 'i'},
    {"name", required_argument, NULL, 'n'},
    {"description", required_argument, NULL, 'd'},
    {"threshold", required_argument, NULL, 't'},
    {"no-command", no_argument, NULL, OPT_NO_COMMAND},
    {"quiet", no_argument, NULL, 'q'},
    {"replay", required_argument, NULL, OPT_REPLAY},
    {"tag", required_argument, NULL, OPT_TAG},
    {"no-auto-tags", no_argument, NULL, OPT_NO_AUTO_TAGS},
    {"fail-if-slower", required_argument, NULL, OPT_FAIL_IF_SLOWER},
    {"baseline-runs", required_argument, NULL, OPT_BASELINE_RUNS},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

void
options_help(FILE *f)
{
	fputs("Usage: grasshopper [OPTIONS] [--] COMMAND [ARG...]\n"
	      "       grasshopper [OPTIONS] --no-command\n"
	      "       grasshopper [-j TOKEN] [-s URL] --replay FILE\n"
	      "       grasshopper login [--server URL]\n"
	      "       grasshopper logout\n"
	      "\n"
	      "Run COMMAND, sample the whole machine's CPU usage while it runs "
	      "and send\n"
	      "the samples to a grasshopper tracker, where the web page charts "
	      "them.\n"
	      "Exits with COMMAND's exit status.\n"
	      "\n"
	      "Options:\n"
	      "  -j, --jwt TOKEN        your token from the tracker's web "
	      "page; better:\n"
	      "                         store it with `grasshopper login`, or "
	      "set\n"
	      "                         GRASSHOPPER_JWT (both keep it out of "
	      "ps)\n"
	      "  -s, --server URL       the tracker (or GRASSHOPPER_SERVER; "
	      "default: the\n"
	      "                         stored token's, else " SERVER_DEFAULT
	      ")\n"
	      "  -i, --interval SECS    seconds between samples, 0.05 to 3600 "
	      "(default 0.5)\n"
	      "  -n, --name NAME        the test's name (default: the "
	      "command's name,\n"
	      "                         or \"monitor\" with --no-command)\n"
	      "  -d, --description TEXT the test's description (default: the "
	      "command's\n"
	      "                         arguments)\n"
	      "  -t, --threshold FRAC   count time above this CPU usage: 0 to "
	      "1, or a\n"
	      "                         percentage such as 80% (default 0.5)\n"
	      "      --no-command       run no command; monitor until Ctrl-C "
	      "or SIGTERM\n"
	      "      --tag KEY=VALUE    tag the test (repeatable; over a "
	      "detected tag\n"
	      "                         of the same key)\n"
	      "      --no-auto-tags     send only the --tag tags, not the "
	      "detected ones\n"
	      "                         (host, cpus, mem_total, kernel, and "
	      "in CI: ci,\n"
	      "                         repo, branch, commit, job_url)\n"
	      "      --fail-if-slower PCT\n"
	      "                         exit 122 when COMMAND succeeded but "
	      "took more than\n"
	      "                         PCT percent longer (or longer above "
	      "the threshold)\n"
	      "                         than the median of its earlier runs\n"
	      "      --baseline-runs N  compare with the last N earlier runs "
	      "of the same\n"
	      "                         name and branch, 3 to 100 (default "
	      "10)\n"
	      "  -q, --quiet            print no summary at the end\n"
	      "      --replay FILE      send samples saved while the tracker "
	      "was unreachable\n"
	      "  -h, --help             show this help and exit\n"
	      "  -V, --version          show the version and exit\n"
	      "\n"
	      "If the tracker cannot be reached, COMMAND runs anyway; the "
	      "samples are\n"
	      "retried in the background and, if still undelivered at the "
	      "end, saved to\n"
	      "a file for --replay.\n"
	      "\n"
	      "login reads a token (without echo on a terminal), checks it "
	      "with the\n"
	      "tracker and keeps it, with that server, in\n"
	      "$XDG_CONFIG_HOME/grasshopper/credentials (mode 0600); logout "
	      "removes it.\n"
	      "The command never sees the token in its environment.\n"
	      "\n"
	      "Examples:\n"
	      "  grasshopper login --server https://gh.example.org\n"
	      "  grasshopper -- make -j8 test\n"
	      "  grasshopper -i 1 -t 80% -n nightly ./run-benchmarks.sh\n"
	      "  grasshopper --no-command -n 'idle baseline'\n"
	      "  grasshopper --fail-if-slower 25 -- make bench\n"
	      "\n"
	      "See grasshopper(1) for more.\n",
	      f);
}

/* Put a one-line message in err. */
static enum options_result usage_error(char *err, size_t errlen,
				       const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum options_result
usage_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return OPTIONS_USAGE;
}

/* A finite decimal number making up all of s; return 0 or -1. */
static int
parse_number(const char *s, double *out)
{
	char *end;
	if (!*s || strchr(" \t\n", *s))
		return -1;
	double d = strtod(s, &end);
	if (*end || !isfinite(d))
		return -1;
	*out = d;
	return 0;
}

int
parse_interval(const char *s, double *out)
{
	double d;
	if (parse_number(s, &d) < 0 || d < INTERVAL_MIN || d > INTERVAL_MAX)
		return -1;
	*out = d;
	return 0;
}

int
parse_threshold(const char *s, double *out)
{
	size_t n = strlen(s);
	double d;
	if (n > 1 && s[n - 1] == '%') {
		char tmp[64];
		if (n >= sizeof tmp)
			return -1;
		memcpy(tmp, s, n - 1);
		tmp[n - 1] = '\0';
		if (parse_number(tmp, &d) < 0)
			return -1;
		d /= 100.0;
	} else if (parse_number(s, &d) < 0) {
		return -1;
	}
	if (d < 0.0 || d > 1.0)
		return -1;
	*out = d;
	return 0;
}

int
parse_fail_if_slower(const char *s, double *out)
{
	size_t n = strlen(s);
	char tmp[64];
	double d;
	if (n == 0 || n >= sizeof tmp)
		return -1;
	memcpy(tmp, s, n + 1);
	if (n > 1 && tmp[n - 1] == '%')
		tmp[n - 1] = '\0'; /* "20%" as well as "20" */
	if (parse_number(tmp, &d) < 0 || !(d > 0) || d > FAIL_IF_SLOWER_MAX)
		return -1;
	*out = d;
	return 0;
}

int
parse_baseline_runs(const char *s, int *out)
{
	double d;
	if (parse_number(s, &d) < 0 || d < BASELINE_MIN_RUNS ||
	    d > BASELINE_RUNS_MAX || d != (double)(int)d)
		return -1;
	*out = (int)d;
	return 0;
}

/* A token goes into a header verbatim: printable ASCII, no blanks. */
bool
token_ok(const char *t)
{
	if (!*t)
		return false;
	for (; *t; t++)
		if (*t <= ' ' || *t > '~')
			return false;
	return true;
}

/* Wipe and free the token at *t, if any. */
static void
token_forget(char **t)
{
	if (*t)
		explicit_bzero(*t, strlen(*t));
	free(*t);
	*t = NULL;
}

char *
server_normalize(const char *url)
{
	const char *host = !strncmp(url, "http://", 7)	  ? url + 7
			   : !strncmp(url, "https://", 8) ? url + 8
							  : NULL;
	if (!host || !*host || *host == '/')
		return NULL;
	for (const char *p = url; *p; p++)
		if (*p <= ' ' || *p > '~')
			return NULL;
	char *s = xstrdup(url);
	size_t n = strlen(s);
	while (n > 0 && s[n - 1] == '/')
		s[--n] = '\0';
	return s;
}

/* The default description: the command's arguments, blank-separated. */
static char *
join_args(char **args)
{
	struct buf b = {0};
	buf_add(&b, "", 0);
	for (char **a = args; *a; a++) {
		if (a != args)
			buf_add(&b, " ", 1);
		buf_puts(&b, *a);
	}
	return b.p;
}

/* What to run: a command, --no-command or --replay, exactly one. */
static enum options_result
options_mode(const struct options *o, char *err, size_t errlen)
{
	if (o->replay && (o->command || o->no_command))
		return usage_error(err, errlen,
				   "--replay takes no command and no "
				   "--no-command");
	if (o->no_command && o->command)
		return usage_error(err, errlen,
				   "give a command or --no-command, not both");
	if (!o->replay && !o->no_command && !o->command)
		return usage_error(err, errlen,
				   "no command to run (or pass --no-command "
				   "to only monitor); see grasshopper --help");
	if (o->fail_if_slower > 0 && !o->command)
		return usage_error(err, errlen,
				   "--fail-if-slower judges a command's run, "
				   "not %s",
				   o->replay ? "a --replay" : "--no-command");
	return OPTIONS_RUN;
}

/* -s, else GRASSHOPPER_SERVER, normalized into *server (NULL when
 * neither is given). */
static enum options_result
given_server(const struct options *o, char **server, char *err, size_t errlen)
{
	const char *env, *url = o->server;
	if (!url && (env = getenv("GRASSHOPPER_SERVER")) && *env)
		url = env;
	*server = NULL;
	if (url && !(*server = server_normalize(url)))
		return usage_error(err, errlen,
				   "--server must be an http:// or https:// "
				   "URL, not '%s'",
				   url);
	return OPTIONS_RUN;
}

/* The credentials file, read only when no other token is given; return
 * OPTIONS_RUN (with *have set when there is one) or a usage error. */
static enum options_result
stored_load(struct credentials *c, bool *have, struct buf *path, char *err,
	    size_t errlen)
{
	struct buf dir = {0};
	char why[256];
	*have = false;
	int rc = credentials_paths(&dir, path);
	buf_free(&dir);
	if (rc < 0)
		return OPTIONS_RUN; /* nowhere to look: as if none */
	switch (credentials_load(c, path->p, why, sizeof why)) {
	case CREDENTIALS_OK:
		*have = true;
		return OPTIONS_RUN;
	case CREDENTIALS_NONE:
		return OPTIONS_RUN;
	case CREDENTIALS_BAD:
	default:
		return usage_error(err, errlen, "%s: %s", path->p, why);
	}
}

/* The token and the server (SPEC 6.2: -j, GRASSHOPPER_JWT, then the
 * credentials file, whose token goes only to its own server). */
static enum options_result
options_token(struct options *o, char *err, size_t errlen)
{
	const char *env = getenv("GRASSHOPPER_JWT");
	struct credentials stored = {0};
	struct buf path = {0};
	char *given = NULL;
	bool have = false;
	enum options_result rc = given_server(o, &given, err, errlen);
	if (rc == OPTIONS_RUN && !o->token && !(env && *env))
		rc = stored_load(&stored, &have, &path, err, errlen);
	if (rc != OPTIONS_RUN)
		goto done;
	struct token_sources in = {.option = o->token,
				   .env = env && *env ? env : NULL,
				   .stored = have ? &stored : NULL,
				   .server = given,
				   .path = path.p};
	struct token_choice pick;
	if (token_resolve(&in, &pick, err, errlen) < 0) {
		rc = OPTIONS_USAGE;
		goto done;
	}
	if (!token_ok(pick.token)) {
		rc = usage_error(err, errlen,
				 "the token must be printable ASCII without "
				 "blanks; check what was pasted");
		goto done;
	}
	char *token = xstrdup(pick.token), *server = xstrdup(pick.server);
	token_forget(&o->token);
	free(o->server);
	o->token = token;
	o->server = server;
	o->server_given = given != NULL;
	o->token_stored = pick.stored;
done:
	credentials_free(&stored);
	buf_free(&path);
	free(given);
	return rc;
}

/* The environment's tuning of delivery. */
static enum options_result
options_tuning(struct options *o, char *err, size_t errlen)
{
	const char *env;
	o->flush_timeout = FLUSH_TIMEOUT_DEFAULT;
	if ((env = getenv("GRASSHOPPER_FLUSH_TIMEOUT")) && *env &&
	    (parse_number(env, &o->flush_timeout) < 0 || o->flush_timeout < 0 ||
	     o->flush_timeout > FLUSH_TIMEOUT_MAX))
		return usage_error(err, errlen,
				   "GRASSHOPPER_FLUSH_TIMEOUT must be seconds "
				   "from 0 to 3600, not '%s'",
				   env);
	if ((env = getenv("GRASSHOPPER_SPOOL_DIR")) && *env)
		o->spool_dir = xstrdup(env);
	return OPTIONS_RUN;
}

void
options_scrub_env(void)
{
	char *env = getenv("GRASSHOPPER_JWT");
	/* The copy in grasshopper's own /proc/PID/environ goes too. */
	if (env)
		explicit_bzero(env, strlen(env));
	unsetenv("GRASSHOPPER_JWT");
}

/* The test's name and description when not given: from the command, cut
 * to what the tracker takes (the command must run whatever its length). */
static void
options_defaults(struct options *o)
{
	if (!o->name) {
		const char *base =
		    o->command ? strrchr(o->command[0], '/') : NULL;
		o->name = xstrdup(!o->command	    ? "monitor"
				  : base && base[1] ? base + 1
						    : o->command[0]);
		utf8_truncate(o->name, NAME_MAX_CHARS);
	}
	if (!o->description) {
		o->description =
		    o->command ? join_args(o->command + 1) : xstrdup("");
		utf8_truncate(o->description, DESCRIPTION_MAX_CHARS);
	}
}

/* Take an option's string argument, replacing any earlier one. */
static void
set_string(char **dst, const char *s)
{
	free(*dst);
	*dst = xstrdup(s);
}

/* Take the token and overwrite it in argv, so that ps and /proc/PID/cmdline
 * show it no longer (they did for the moment before: grasshopper(1) says
 * to prefer login or GRASSHOPPER_JWT). */
static void
take_token(char **dst, char *arg)
{
	token_forget(dst);
	*dst = xstrdup(arg);
	explicit_bzero(arg, strlen(arg));
}

static const struct option account_options[] = {
    {"server", required_argument, NULL, 's'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* `grasshopper login [-s URL]` and `grasshopper logout`: argv[0] is the
 * word. Only login takes an option: the server to log in to. */
static enum options_result
options_account(struct options *o, int argc, char **argv, char *err,
		size_t errlen)
{
	bool is_login = !strcmp(argv[0], "login");
	int c;
	optind = 0;
	while (
	    (c = getopt_long(argc, argv, is_login ? "+:s:h" : "+:h",
			     is_login ? account_options : account_options + 1,
			     NULL)) != -1) {
		if (c == 's')
			set_string(&o->server, optarg);
		else if (c == 'h')
			return OPTIONS_HELP;
		else if (c == ':')
			return usage_error(err, errlen, "%s needs a value",
					   argv[optind - 1]);
		else
			return usage_error(
			    err, errlen, "grasshopper %s takes %s, not %s",
			    argv[0],
			    is_login ? "only --server URL" : "no options",
			    argv[optind - 1]);
	}
	if (optind < argc)
		return usage_error(
		    err, errlen, "grasshopper %s takes no arguments%s", argv[0],
		    is_login ? "; the token is read from the "
			       "terminal or standard input"
			     : "");
	if (!is_login)
		return OPTIONS_LOGOUT;
	char *given;
	if (given_server(o, &given, err, errlen) != OPTIONS_RUN)
		return OPTIONS_USAGE;
	free(o->server);
	o->server = given ? given : xstrdup(SERVER_DEFAULT);
	o->server_given = given != NULL;
	return OPTIONS_LOGIN;
}

/* The test's tags: what detection finds (unless --no-auto-tags), then the
 * --tag ones in o->tags over them, into o->tags. */
static enum options_result
options_tags(struct options *o, char *err, size_t errlen)
{
	struct tags all = {0};
	if (!o->no_auto_tags) {
		tags_detect_machine(&all);
		tags_detect_ci(&all, env_getenv, NULL);
	}
	size_t detected = all.n;
	char why[256];
	for (size_t i = 0; i < o->tags.n; i++)
		if (tags_set(&all, o->tags.item[i].key, o->tags.item[i].value,
			     why, sizeof why) < 0) {
			tags_free(&all);
			return usage_error(err, errlen,
					   "--tag: a test has at most %d tags, "
					   "and %zu were detected "
					   "(--no-auto-tags leaves them out)",
					   TAGS_MAX, detected);
		}
	tags_free(&o->tags);
	o->tags = all;
	return OPTIONS_RUN;
}

/* Whether the command is the word login or logout, not after "--":
 * options before the word were meant for it. */
static bool
account_word_misplaced(const struct options *o, char **argv)
{
	return o->command && strcmp(argv[optind - 1], "--") &&
	       (!strcmp(o->command[0], "login") ||
		!strcmp(o->command[0], "logout"));
}

enum options_result
options_parse(struct options *o, int argc, char **argv, char *err,
	      size_t errlen)
{
	*o = (struct options){.interval = INTERVAL_DEFAULT,
			      .threshold = THRESHOLD_DEFAULT,
			      .baseline_runs = BASELINE_RUNS_DEFAULT};
	err[0] = '\0';
	opterr = 0;
	if (argc > 1 &&
	    (!strcmp(argv[1], "login") || !strcmp(argv[1], "logout")))
		return options_account(o, argc - 1, argv + 1, err, errlen);
	optind = 0; /* glibc: start afresh, as each call must */
	int c;
	/* "+": options end at the command, so its own options stay its. */
	while ((c = getopt_long(argc, argv, "+:j:s:i:n:d:t:qhV", long_options,
				NULL)) != -1) {
		switch (c) {
		case 'j':
			take_token(&o->token, optarg);
			break;
		case 's':
			set_string(&o->server, optarg);
			break;
		case 'i':
			if (parse_interval(optarg, &o->interval) < 0)
				return usage_error(
				    err, errlen,
				    "--interval must be seconds from 0.05 "
				    "to 3600, not '%s'",
				    optarg);
			break;
		case 'n':
			if (utf8_chars(optarg, strlen(optarg)) > NAME_MAX_CHARS)
				return usage_error(err, errlen,
						   "--name is longer than %d "
						   "characters",
						   NAME_MAX_CHARS);
			set_string(&o->name, optarg);
			break;
		case 'd':
			if (utf8_chars(optarg, strlen(optarg)) >
			    DESCRIPTION_MAX_CHARS)
				return usage_error(err, errlen,
						   "--description is longer "
						   "than %d characters",
						   DESCRIPTION_MAX_CHARS);
			set_string(&o->description, optarg);
			break;
		case 't':
			if (parse_threshold(optarg, &o->threshold) < 0)
				return usage_error(
				    err, errlen,
				    "--threshold must be a fraction from 0 "
				    "to 1 (or a percentage like 80%%), not "
				    "'%s'",
				    optarg);
			break;
		case OPT_NO_COMMAND:
			o->no_command = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case OPT_REPLAY:
			set_string(&o->replay, optarg);
			break;
		case OPT_TAG: {
			char why[256];
			if (tags_add_arg(&o->tags, optarg, why, sizeof why) < 0)
				return usage_error(err, errlen, "--tag: %s",
						   why);
			break;
		}
		case OPT_NO_AUTO_TAGS:
			o->no_auto_tags = true;
			break;
		case OPT_FAIL_IF_SLOWER:
			if (parse_fail_if_slower(optarg, &o->fail_if_slower) <
			    0)
				return usage_error(
				    err, errlen,
				    "--fail-if-slower must be a percentage "
				    "above 0 and at most %g, not '%s'",
				    FAIL_IF_SLOWER_MAX, optarg);
			break;
		case OPT_BASELINE_RUNS:
			if (parse_baseline_runs(optarg, &o->baseline_runs) < 0)
				return usage_error(
				    err, errlen,
				    "--baseline-runs must be a whole number "
				    "from %d to %d, not '%s'",
				    BASELINE_MIN_RUNS, BASELINE_RUNS_MAX,
				    optarg);
			break;
		case 'h':
			return OPTIONS_HELP;
		case 'V':
			return OPTIONS_VERSION;
		case ':':
			return usage_error(err, errlen, "%s needs a value",
					   argv[optind - 1]);
		default:
			if (optopt)
				return usage_error(err, errlen,
						   "unknown option -%c; see "
						   "grasshopper --help",
						   optopt);
			return usage_error(err, errlen,
					   "unknown option %s; see grasshopper "
					   "--help",
					   argv[optind - 1]);
		}
	}
	if (optind < argc)
		o->command = argv + optind;
	if (account_word_misplaced(o, argv))
		return usage_error(err, errlen,
				   "grasshopper %s is a word of its own, "
				   "first (grasshopper login --server URL); "
				   "to run a command named %s, put -- before "
				   "it",
				   o->command[0], o->command[0]);
	if (options_mode(o, err, errlen) != OPTIONS_RUN ||
	    options_token(o, err, errlen) != OPTIONS_RUN ||
	    options_tuning(o, err, errlen) != OPTIONS_RUN)
		return OPTIONS_USAGE;
	/* A replay's test is described in its file. */
	if (o->replay)
		return OPTIONS_RUN;
	options_defaults(o);
	return options_tags(o, err, errlen);
}

void
options_free(struct options *o)
{
	token_forget(&o->token);
	free(o->server);
	free(o->name);
	free(o->description);
	free(o->replay);
	free(o->spool_dir);
	tags_free(&o->tags);
	*o = (struct options){0};
}
