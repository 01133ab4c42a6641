/*
 * The command line and the environment (SPEC section 4), checked whole
 * before anything runs: a bad option is a one-line usage error, exit 2.
 */
#include "grasshopper.h"

#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Most of a second the flush at exit may be given, from the environment. */
#define FLUSH_TIMEOUT_MAX 3600.0

enum { OPT_NO_COMMAND = 256, OPT_REPLAY };

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
	      "\n"
	      "Run COMMAND, sample the whole machine's CPU usage while it runs "
	      "and send\n"
	      "the samples to a grasshopper tracker, where the web page charts "
	      "them.\n"
	      "Exits with COMMAND's exit status.\n"
	      "\n"
	      "Options:\n"
	      "  -j, --jwt TOKEN        your token from the tracker's web "
	      "page (required;\n"
	      "                         or set GRASSHOPPER_JWT, which keeps it "
	      "out of ps)\n"
	      "  -s, --server URL       the tracker (or GRASSHOPPER_SERVER; "
	      "default\n"
	      "                         " SERVER_DEFAULT ")\n"
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
	      "Examples:\n"
	      "  export GRASSHOPPER_JWT=eyJhbGciOi...\n"
	      "  grasshopper -- make -j8 test\n"
	      "  grasshopper -i 1 -t 80% -n nightly ./run-benchmarks.sh\n"
	      "  grasshopper --no-command -n 'idle baseline'\n"
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

/* A token goes into a header verbatim: printable ASCII, no blanks. */
static int
token_ok(const char *t)
{
	if (!*t)
		return 0;
	for (; *t; t++)
		if (*t <= ' ' || *t > '~')
			return 0;
	return 1;
}

/* The server URL without trailing slashes, or NULL if it is not http(s). */
static char *
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
	return OPTIONS_RUN;
}

/* The token and the server, from the options or else the environment,
 * and the environment's tuning. */
static enum options_result
options_env(struct options *o, char *err, size_t errlen)
{
	const char *env;
	if (!o->token && (env = getenv("GRASSHOPPER_JWT")) && *env)
		o->token = xstrdup(env);
	if (!o->token)
		return usage_error(err, errlen,
				   "no token: pass -j TOKEN or set "
				   "GRASSHOPPER_JWT (get one on the tracker's "
				   "web page)");
	if (!token_ok(o->token))
		return usage_error(err, errlen,
				   "the token must be printable ASCII without "
				   "blanks; check what was pasted");

	const char *url = o->server;
	if (!url && (env = getenv("GRASSHOPPER_SERVER")) && *env)
		url = env;
	o->server_given = url != NULL;
	char *norm = server_normalize(url ? url : SERVER_DEFAULT);
	if (!norm)
		return usage_error(err, errlen,
				   "--server must be an http:// or https:// "
				   "URL, not '%s'",
				   url);
	free(o->server);
	o->server = norm;

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

enum options_result
options_parse(struct options *o, int argc, char **argv, char *err,
	      size_t errlen)
{
	*o = (struct options){.interval = INTERVAL_DEFAULT,
			      .threshold = THRESHOLD_DEFAULT};
	err[0] = '\0';
	opterr = 0;
	optind = 0; /* glibc: start afresh, as each call must */
	int c;
	/* "+": options end at the command, so its own options stay its. */
	while ((c = getopt_long(argc, argv, "+:j:s:i:n:d:t:qhV", long_options,
				NULL)) != -1) {
		switch (c) {
		case 'j':
			set_string(&o->token, optarg);
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
	if (options_mode(o, err, errlen) != OPTIONS_RUN ||
	    options_env(o, err, errlen) != OPTIONS_RUN)
		return OPTIONS_USAGE;
	if (!o->replay) /* a replay's test is described in its file */
		options_defaults(o);
	return OPTIONS_RUN;
}

void
options_free(struct options *o)
{
	free(o->token);
	free(o->server);
	free(o->name);
	free(o->description);
	free(o->replay);
	free(o->spool_dir);
	*o = (struct options){0};
}
