/*
 * Unit tests of client/tags.c: KEY=VALUE at every limit of SPEC 6.3 (±1),
 * each CI provider's variables (a push, a pull request, a tag build), no
 * CI at all, and the machine's tags (cpus with a cgroup v2 quota made up
 * in a temporary directory).
 */
#include "client.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "tap.h"

/* An environment for detection: NAME=VALUE strings, NULL-terminated. */
static const char *
table_lookup(const char *name, void *ctx)
{
	size_t n = strlen(name);
	for (const char **e = ctx; *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

/* A string of n copies of unit. */
static char *
repeat(const char *unit, size_t n)
{
	struct buf b = {0};
	buf_puts(&b, "");
	for (size_t i = 0; i < n; i++)
		buf_puts(&b, unit);
	return b.p;
}

static void
test_limits(void)
{
	struct tags t = {0};
	char err[200];
	is_int(tags_add_arg(&t, "branch=main", err, sizeof err), 0,
	       "KEY=VALUE");
	is_str(tags_get(&t, "branch"), "main", "is kept");
	is_int(tags_add_arg(&t, "expr=a=b", err, sizeof err), 0,
	       "split at the first '='");
	is_str(tags_get(&t, "expr"), "a=b", "the value keeps the rest");
	is_int(tags_add_arg(&t, "empty=", err, sizeof err), 0,
	       "an empty value");
	is_str(tags_get(&t, "empty"), "", "is a value");
	is_int(tags_add_arg(&t, "branch=dev", err, sizeof err), 0,
	       "a key again");
	is_str(tags_get(&t, "branch"), "dev", "replaces its value");
	is_int(t.n, 3, "without a second entry");
	ok(tags_get(&t, "nope") == NULL, "an unknown key: NULL");

	ok(tags_add_arg(&t, "novalue", err, sizeof err) < 0 &&
	       strstr(err, "not KEY=VALUE"),
	   "no '=': refused");
	ok(tags_add_arg(&t, "=v", err, sizeof err) < 0 &&
	       strstr(err, "needs a key"),
	   "an empty key: refused");

	char *k64 = repeat("k", TAG_KEY_MAX), *k65 = repeat("k", 65);
	is_int(tags_set(&t, k64, "v", err, sizeof err), 0,
	       "a key of 64 characters");
	ok(tags_set(&t, k65, "v", err, sizeof err) < 0 &&
	       strstr(err, "longer than 64"),
	   "65: refused");
	is_int(tags_set(&t, "AZaz09_./-", "v", err, sizeof err), 0,
	       "every kind of character a key may have");
	const char *bad_keys[] = {"a b",  "a:b", "a=b", "k\xc3\xa9",
				  "a\tb", "a+b", "a@b", "a\\b"};
	for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++)
		ok(tags_set(&t, bad_keys[i], "v", err, sizeof err) < 0 &&
		       strstr(err, "only letters, digits"),
		   "key %zu with a character outside [A-Za-z0-9_./-]: refused",
		   i);

	char *v256 = repeat("v", TAG_VALUE_MAX), *v257 = repeat("v", 257);
	char *e256 = repeat("\xc3\xa9", 256), *e257 = repeat("\xc3\xa9", 257);
	is_int(tags_set(&t, "v", v256, err, sizeof err), 0,
	       "a value of 256 characters");
	ok(tags_set(&t, "v", v257, err, sizeof err) < 0 &&
	       strstr(err, "longer than 256"),
	   "257: refused");
	is_int(tags_set(&t, "v", e256, err, sizeof err), 0,
	       "256 characters of two bytes each (512 bytes)");
	ok(tags_set(&t, "v", e257, err, sizeof err) < 0,
	   "257 of them: refused");
	ok(tags_set(&t, "v", "caf\xe9", err, sizeof err) < 0 &&
	       strstr(err, "not UTF-8"),
	   "a value that is not UTF-8: refused");
	ok(tags_set(&t, "v", "\xed\xa0\x80", err, sizeof err) < 0,
	   "a lone surrogate: refused");
	is_str(tags_get(&t, "v"), e256, "a refused value leaves the old one");
	char *huge = repeat("v", 1 << 20);
	ok(tags_set(&t, "v", huge, err, sizeof err) < 0 && strlen(err) < 100,
	   "a value of 1 MiB: refused, in a short message");
	ok(tags_set(&t, huge, "v", err, sizeof err) < 0 && strlen(err) < 100,
	   "a key of 1 MiB: refused, in a short message");
	free(huge);
	tags_free(&t);

	for (int i = 0; i < TAGS_MAX; i++) {
		char key[16];
		snprintf(key, sizeof key, "k%d", i);
		if (tags_set(&t, key, "v", err, sizeof err) < 0)
			break;
	}
	is_int(t.n, TAGS_MAX, "32 tags");
	ok(tags_set(&t, "one-more", "v", err, sizeof err) < 0 &&
	       strstr(err, "at most 32"),
	   "a 33rd: refused");
	is_int(tags_set(&t, "k5", "new", err, sizeof err), 0,
	       "a full set still takes a new value for a key it has");
	is_int(t.n, TAGS_MAX, "still 32");
	tags_free(&t);

	free(k64);
	free(k65);
	free(v256);
	free(v257);
	free(e256);
	free(e257);
}

/* Detect with env and compare the CI tags with want (NULL: absent). */
static void
ci_is(const char **env, const char *want_ci, const char *repo,
      const char *branch, const char *commit, const char *job_url,
      const char *what)
{
	struct tags t = {0};
	const char *ci = tags_detect_ci(&t, table_lookup, env);
	is_str(ci, want_ci, "%s: provider", what);
	is_str(tags_get(&t, "ci"), want_ci, "%s: ci", what);
	is_str(tags_get(&t, "repo"), repo, "%s: repo", what);
	is_str(tags_get(&t, "branch"), branch, "%s: branch", what);
	is_str(tags_get(&t, "commit"), commit, "%s: commit", what);
	is_str(tags_get(&t, "job_url"), job_url, "%s: job_url", what);
	tags_free(&t);
}

#define SHA "0123456789abcdef0123456789abcdef01234567"

static void
test_ci(void)
{
	const char *none[] = {"HOME=/root", "CI=true", NULL};
	ci_is(none, NULL, NULL, NULL, NULL, NULL, "no provider (CI=true only)");
	const char *off[] = {"GITHUB_ACTIONS=false", "GITLAB_CI=", NULL};
	ci_is(off, NULL, NULL, NULL, NULL, NULL, "markers not true");

	const char *gh_push[] = {"GITHUB_ACTIONS=true",
				 "GITHUB_SERVER_URL=https://github.com",
				 "GITHUB_REPOSITORY=acme/app",
				 "GITHUB_REF=refs/heads/main",
				 "GITHUB_REF_NAME=main",
				 "GITHUB_REF_TYPE=branch",
				 "GITHUB_HEAD_REF=",
				 "GITHUB_SHA=" SHA,
				 "GITHUB_RUN_ID=1658821493",
				 NULL};
	ci_is(gh_push, "github", "acme/app", "main", SHA,
	      "https://github.com/acme/app/actions/runs/1658821493",
	      "GitHub push");
	const char *gh_pr[] = {"GITHUB_ACTIONS=true",
			       "GITHUB_SERVER_URL=https://github.com",
			       "GITHUB_REPOSITORY=acme/app",
			       "GITHUB_REF=refs/pull/42/merge",
			       "GITHUB_REF_NAME=42/merge",
			       "GITHUB_REF_TYPE=branch",
			       "GITHUB_HEAD_REF=feature/x",
			       "GITHUB_SHA=" SHA,
			       "GITHUB_RUN_ID=7",
			       NULL};
	ci_is(gh_pr, "github", "acme/app", "feature/x", SHA,
	      "https://github.com/acme/app/actions/runs/7",
	      "GitHub pull request: the source branch, not 42/merge");
	const char *gh_tag[] = {"GITHUB_ACTIONS=true",
				"GITHUB_SERVER_URL=https://github.com",
				"GITHUB_REPOSITORY=acme/app",
				"GITHUB_REF=refs/tags/v1.0",
				"GITHUB_REF_NAME=v1.0",
				"GITHUB_REF_TYPE=tag",
				"GITHUB_SHA=" SHA,
				"GITHUB_RUN_ID=8",
				NULL};
	ci_is(gh_tag, "github", "acme/app", NULL, SHA,
	      "https://github.com/acme/app/actions/runs/8",
	      "GitHub tag: no branch");

	const char *gl_push[] = {
	    "GITLAB_CI=true",
	    "CI_PROJECT_PATH=group/app",
	    "CI_COMMIT_BRANCH=main",
	    "CI_COMMIT_REF_NAME=main",
	    "CI_COMMIT_SHA=" SHA,
	    "CI_JOB_URL=https://gitlab.example.com/group/app/-/jobs/99",
	    NULL};
	ci_is(gl_push, "gitlab", "group/app", "main", SHA,
	      "https://gitlab.example.com/group/app/-/jobs/99", "GitLab push");
	const char *gl_mr[] = {
	    "GITLAB_CI=true",
	    "CI_PROJECT_PATH=group/app",
	    "CI_COMMIT_REF_NAME=refs/merge-requests/3/head",
	    "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME=fix-1",
	    "CI_COMMIT_SHA=" SHA,
	    "CI_JOB_URL=https://gitlab.example.com/group/app/-/jobs/100",
	    NULL};
	ci_is(gl_mr, "gitlab", "group/app", "fix-1", SHA,
	      "https://gitlab.example.com/group/app/-/jobs/100",
	      "GitLab merge request pipeline: the source branch");
	const char *gl_tag[] = {
	    "GITLAB_CI=true",
	    "CI_PROJECT_PATH=group/app",
	    "CI_COMMIT_TAG=v2",
	    "CI_COMMIT_REF_NAME=v2",
	    "CI_COMMIT_SHA=" SHA,
	    "CI_JOB_URL=https://gitlab.example.com/group/app/-/jobs/101",
	    NULL};
	ci_is(gl_tag, "gitlab", "group/app", NULL, SHA,
	      "https://gitlab.example.com/group/app/-/jobs/101",
	      "GitLab tag: no branch");

	const char *bk_push[] = {
	    "BUILDKITE=true",
	    "BUILDKITE_REPO=git@github.com:acme/app.git",
	    "BUILDKITE_BRANCH=main",
	    "BUILDKITE_TAG=",
	    "BUILDKITE_PULL_REQUEST=false",
	    "BUILDKITE_COMMIT=" SHA,
	    "BUILDKITE_BUILD_URL=https://buildkite.com/acme/app/builds/5",
	    "BUILDKITE_JOB_ID=e44f9784-e20e-4b93-a21d-f41fd5869db9",
	    NULL};
	ci_is(bk_push, "buildkite", "git@github.com:acme/app.git", "main", SHA,
	      "https://buildkite.com/acme/app/builds/"
	      "5#e44f9784-e20e-4b93-a21d-f41fd5869db9",
	      "Buildkite push");
	const char *bk_pr[] = {
	    "BUILDKITE=true",
	    "BUILDKITE_REPO=git@github.com:acme/app.git",
	    "BUILDKITE_BRANCH=feature/y",
	    "BUILDKITE_PULL_REQUEST=17",
	    "BUILDKITE_PULL_REQUEST_BASE_BRANCH=main",
	    "BUILDKITE_COMMIT=" SHA,
	    "BUILDKITE_BUILD_URL=https://buildkite.com/acme/app/builds/6",
	    NULL};
	ci_is(bk_pr, "buildkite", "git@github.com:acme/app.git", "feature/y",
	      SHA, "https://buildkite.com/acme/app/builds/6",
	      "Buildkite pull request: its own branch (no job id: the build)");
	const char *bk_tag[] = {
	    "BUILDKITE=true",
	    "BUILDKITE_REPO=git@github.com:acme/app.git",
	    "BUILDKITE_BRANCH=v3.0",
	    "BUILDKITE_TAG=v3.0",
	    "BUILDKITE_COMMIT=" SHA,
	    "BUILDKITE_BUILD_URL=https://buildkite.com/acme/app/builds/7",
	    "BUILDKITE_JOB_ID=j",
	    NULL};
	ci_is(bk_tag, "buildkite", "git@github.com:acme/app.git", NULL, SHA,
	      "https://buildkite.com/acme/app/builds/7#j",
	      "Buildkite tag: the branch variable holds the tag, no branch");

	const char *jk_multi[] = {
	    "JENKINS_URL=https://ci.example.com/",
	    "BUILD_URL=https://ci.example.com/job/app/job/main/12/",
	    "BRANCH_NAME=main",
	    "GIT_URL=https://github.com/acme/app.git",
	    "GIT_COMMIT=" SHA,
	    NULL};
	ci_is(jk_multi, "jenkins", "https://github.com/acme/app.git", "main",
	      SHA, "https://ci.example.com/job/app/job/main/12/",
	      "Jenkins multibranch");
	const char *jk_pr[] = {
	    "JENKINS_URL=https://ci.example.com/",
	    "BUILD_URL=https://ci.example.com/job/app/job/PR-24/1/",
	    "BRANCH_NAME=PR-24",
	    "CHANGE_ID=24",
	    "CHANGE_BRANCH=feature/z",
	    "CHANGE_TARGET=main",
	    "GIT_URL=https://github.com/acme/app.git",
	    "GIT_COMMIT=" SHA,
	    NULL};
	ci_is(jk_pr, "jenkins", "https://github.com/acme/app.git", "feature/z",
	      SHA, "https://ci.example.com/job/app/job/PR-24/1/",
	      "Jenkins change request: CHANGE_BRANCH, not PR-24");
	const char *jk_tag[] = {
	    "JENKINS_URL=https://ci.example.com/",
	    "BUILD_URL=https://ci.example.com/job/app/job/v1/1/",
	    "BRANCH_NAME=v1",
	    "TAG_NAME=v1",
	    "GIT_COMMIT=" SHA,
	    NULL};
	ci_is(jk_tag, "jenkins", NULL, NULL, SHA,
	      "https://ci.example.com/job/app/job/v1/1/",
	      "Jenkins tag: no branch");
	const char *jk_free[] = {"JENKINS_URL=https://ci.example.com/",
				 "BUILD_URL=https://ci.example.com/job/app/3/",
				 "GIT_BRANCH=origin/release/2",
				 "GIT_URL=ssh://git@example.com/app.git",
				 "GIT_COMMIT=" SHA,
				 NULL};
	ci_is(jk_free, "jenkins", "ssh://git@example.com/app.git", "release/2",
	      SHA, "https://ci.example.com/job/app/3/",
	      "Jenkins freestyle with the git plugin: origin/ taken off");

	const char *cc_push[] = {
	    "CIRCLECI=true",
	    "CIRCLE_PROJECT_USERNAME=acme",
	    "CIRCLE_PROJECT_REPONAME=app",
	    "CIRCLE_REPOSITORY_URL=git@github.com:acme/app.git",
	    "CIRCLE_BRANCH=main",
	    "CIRCLE_SHA1=" SHA,
	    "CIRCLE_BUILD_URL=https://circleci.com/gh/acme/app/123",
	    NULL};
	ci_is(cc_push, "circleci", "acme/app", "main", SHA,
	      "https://circleci.com/gh/acme/app/123", "CircleCI push");
	const char *cc_tag[] = {
	    "CIRCLECI=true",
	    "CIRCLE_REPOSITORY_URL=git@github.com:acme/app.git",
	    "CIRCLE_TAG=v9",
	    "CIRCLE_SHA1=" SHA,
	    "CIRCLE_BUILD_URL=https://circleci.com/gh/acme/app/124",
	    NULL};
	ci_is(cc_tag, "circleci", "git@github.com:acme/app.git", NULL, SHA,
	      "https://circleci.com/gh/acme/app/124",
	      "CircleCI tag (and no project names): the repository's URL");

	/* A detected value that breaks a limit is left out, not cut. */
	char *long_url = repeat("u", 300);
	struct buf var = {0};
	buf_printf(&var, "CI_JOB_URL=%s", long_url);
	const char *gl_long[] = {"GITLAB_CI=true", "CI_COMMIT_BRANCH=main",
				 var.p, NULL};
	ci_is(gl_long, "gitlab", NULL, "main", NULL, NULL,
	      "a 300-character job URL: left out");
	buf_free(&var);
	free(long_url);

	/* The first provider found wins; one run is in one CI. */
	const char *both[] = {"GITHUB_ACTIONS=true", "GITHUB_SHA=" SHA,
			      "JENKINS_URL=https://ci/", "GIT_COMMIT=x", NULL};
	ci_is(both, "github", NULL, NULL, SHA, NULL,
	      "two providers' markers: the first");
}

/* Write text to dir/rel/cpu.max, making the directories. */
static void
cpu_max_put(const char *dir, const char *rel, const char *text)
{
	struct buf p = {0};
	buf_printf(&p, "%s%s", dir, rel);
	dirs_make(p.p);
	buf_puts(&p, "/cpu.max");
	FILE *f = fopen(p.p, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	buf_free(&p);
}

/* cpus_describe's text. */
static char *
cpus_text(long n, const char *fs, const char *proc_cgroup)
{
	struct buf b = {0};
	cpus_describe(&b, n, fs, proc_cgroup);
	return b.p;
}

static void
test_machine(void)
{
	char dir[] = "/tmp/gh-tags-XXXXXX";
	if (!mkdtemp(dir)) {
		ok(0, "mkdtemp");
		return;
	}
	char *s;
	is_str(s = cpus_text(4, dir, NULL), "4", "no /proc/self/cgroup: N");
	free(s);
	is_str(s = cpus_text(4, dir, "4:memory:/x\n1:cpu:/\n"), "4",
	       "cgroup v1 only: N");
	free(s);
	is_str(s = cpus_text(4, dir, "0::/\n"), "4",
	       "cgroup v2, no cpu.max: N");
	free(s);
	cpu_max_put(dir, "/ci/job", "max 100000\n");
	is_str(s = cpus_text(4, dir, "0::/ci/job\n"), "4",
	       "cpu.max \"max\": no quota");
	free(s);
	cpu_max_put(dir, "/ci/job", "150000 100000\n");
	is_str(s = cpus_text(2, dir, "1:cpu:/\n0::/ci/job\n"), "2 (quota 1.5)",
	       "a quota of 1.5 CPUs is noted");
	free(s);
	cpu_max_put(dir, "/ci", "50000 100000\n");
	is_str(s = cpus_text(2, dir, "0::/ci/job/\n"), "2 (quota 0.5)",
	       "a parent's smaller quota is the one that holds");
	free(s);
	cpu_max_put(dir, "", "25000 100000\n");
	is_str(s = cpus_text(2, dir, "0::/ci/job\n"), "2 (quota 0.25)",
	       "up to the root of what is mounted (a container's own)");
	free(s);
	cpu_max_put(dir, "", "garbage\n");
	cpu_max_put(dir, "/ci", "0 100000\n");
	cpu_max_put(dir, "/ci/job", "100000 0\n");
	is_str(s = cpus_text(2, dir, "0::/ci/job\n"), "2",
	       "unreadable quotas (garbage, 0, a zero period): none");
	free(s);

	struct buf b = {0};
	mem_total_describe(&b, 24683756);
	is_str(b.p, "23.5 GiB", "mem_total in GiB, one decimal");
	buf_free(&b);

	struct tags t = {0};
	struct utsname u;
	uname(&u);
	tags_detect_machine(&t);
	is_str(tags_get(&t, "host"), u.nodename, "host: the node name");
	is_str(tags_get(&t, "kernel"), u.release, "kernel: uname's release");
	const char *cpus = tags_get(&t, "cpus");
	long n = cpus ? strtol(cpus, NULL, 10) : 0;
	ok(n >= 1 && n <= sysconf(_SC_NPROCESSORS_CONF),
	   "cpus: those this process may use (%s)", cpus ? cpus : "none");
	const char *mem = tags_get(&t, "mem_total");
	ok(mem && strstr(mem, " GiB") && strtod(mem, NULL) > 0,
	   "mem_total (%s)", mem ? mem : "none");
	ok(tags_get(&t, "ci") == NULL, "tags_detect_machine adds no CI tags");
	tags_free(&t);

	struct buf rm = {0};
	buf_printf(&rm, "rm -rf '%s'", dir);
	int rc = system(rm.p);
	(void)rc;
	buf_free(&rm);
}

int
main(void)
{
	test_limits();
	test_ci();
	test_machine();
	return done_testing();
}
