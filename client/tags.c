/*
 * Tags (SPEC 6.3): KEY=VALUE pairs a test carries, checked against the
 * tracker's limits before anything is sent, and the ones the client finds
 * itself: the machine (host, cpus, mem_total, kernel) and, in CI, the
 * provider, repository, branch, commit and job URL.
 */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

/* Longest /proc/self/cgroup or cpu.max read. */
#define CGROUP_READ_MAX 8192
/* sched_getaffinity's set grows up to this many CPUs. */
#define AFFINITY_CPUS_MAX (1 << 16)

void
tags_free(struct tags *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->item[i].key);
		free(t->item[i].value);
	}
	*t = (struct tags){0};
}

const char *
tags_get(const struct tags *t, const char *key)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->item[i].key, key) == 0)
			return t->item[i].value;
	return NULL;
}

/* Whether c may be in a key: [A-Za-z0-9_./-]. */
static bool
key_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '/' ||
	       c == '-';
}

/* Return 0 if key is 1 to TAG_KEY_MAX characters of key_char, else -1
 * with err set. */
static int
key_check(const char *key, char *err, size_t errlen)
{
	size_t n = strlen(key);
	if (n == 0) {
		snprintf(err, errlen, "a tag needs a key (KEY=VALUE)");
		return -1;
	}
	if (n > TAG_KEY_MAX) {
		snprintf(err, errlen,
			 "tag key %.20s... is longer than %d characters", key,
			 TAG_KEY_MAX);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (!key_char(key[i])) {
			snprintf(err, errlen,
				 "tag key %s: only letters, digits and _ . / "
				 "- may be in a key",
				 key);
			return -1;
		}
	return 0;
}

/* Return 0 if value is well-formed UTF-8 of at most TAG_VALUE_MAX code
 * points, else -1 with err set. */
static int
value_check(const char *key, const char *value, char *err, size_t errlen)
{
	size_t len = strlen(value);
	if (!utf8_valid(value, len)) {
		snprintf(err, errlen, "tag %s: the value is not UTF-8", key);
		return -1;
	}
	if (utf8_chars(value, len) > TAG_VALUE_MAX) {
		snprintf(err, errlen,
			 "tag %s: the value is longer than %d characters", key,
			 TAG_VALUE_MAX);
		return -1;
	}
	return 0;
}

int
tags_set(struct tags *t, const char *key, const char *value, char *err,
	 size_t errlen)
{
	if (key_check(key, err, errlen) < 0 ||
	    value_check(key, value, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->item[i].key, key) == 0) {
			free(t->item[i].value);
			t->item[i].value = xstrdup(value);
			return 0;
		}
	if (t->n == TAGS_MAX) {
		snprintf(err, errlen, "tag %s: a test has at most %d tags", key,
			 TAGS_MAX);
		return -1;
	}
	t->item[t->n++] = (struct tag){xstrdup(key), xstrdup(value)};
	return 0;
}

int
tags_add_arg(struct tags *t, const char *arg, char *err, size_t errlen)
{
	const char *eq = strchr(arg, '=');
	if (!eq) {
		snprintf(err, errlen, "tag %.80s: not KEY=VALUE", arg);
		return -1;
	}
	char *key = xmalloc((size_t)(eq - arg) + 1);
	memcpy(key, arg, (size_t)(eq - arg));
	key[eq - arg] = '\0';
	int rc = tags_set(t, key, eq + 1, err, errlen);
	free(key);
	return rc;
}

/* ---- detection ------------------------------------------------------- */

const char *
env_getenv(const char *name, void *ctx)
{
	(void)ctx;
	return getenv(name);
}

/* Set a detected tag, unless value is missing, empty or breaks a limit
 * (a detected value is never cut: a shortened URL or branch would be
 * wrong, none is only missing). */
static void
tag_detected(struct tags *t, const char *key, const char *value)
{
	char err[160];
	if (value && *value)
		(void)tags_set(t, key, value, err, sizeof err);
}

/* What a provider's variables say of a run (NULL: nothing); values made
 * of several variables are put together in the bufs. */
struct ci_vars {
	env_lookup get;
	void *ctx;
	const char *repo, *branch, *commit, *job_url;
	struct buf made_repo, made_url;
};

/* The variable name's value when set and not empty, else NULL. */
static const char *
var(const struct ci_vars *v, const char *name)
{
	const char *s = v->get(name, v->ctx);
	return s && *s ? s : NULL;
}

/*
 * Each provider's documented variables, and what they give:
 *
 * GitHub Actions ("Variables reference", docs.github.com/actions):
 *   GITHUB_ACTIONS=true; repo GITHUB_REPOSITORY (owner/name); branch
 *   GITHUB_HEAD_REF in a pull request (its source branch; GITHUB_REF_NAME
 *   is then "N/merge"), else GITHUB_REF_NAME when GITHUB_REF_TYPE is
 *   "branch" (none for a tag); commit GITHUB_SHA; job_url
 *   GITHUB_SERVER_URL/GITHUB_REPOSITORY/actions/runs/GITHUB_RUN_ID (the
 *   run's page: no variable names the job's).
 */
static void
github_vars(struct ci_vars *v)
{
	const char *server = var(v, "GITHUB_SERVER_URL");
	const char *run = var(v, "GITHUB_RUN_ID");
	const char *type = var(v, "GITHUB_REF_TYPE");
	v->repo = var(v, "GITHUB_REPOSITORY");
	v->branch = var(v, "GITHUB_HEAD_REF");
	if (!v->branch && type && strcmp(type, "branch") == 0)
		v->branch = var(v, "GITHUB_REF_NAME");
	v->commit = var(v, "GITHUB_SHA");
	if (server && v->repo && run) {
		buf_printf(&v->made_url, "%s/%s/actions/runs/%s", server,
			   v->repo, run);
		v->job_url = v->made_url.p;
	}
}

/*
 * GitLab CI ("Predefined CI/CD variables reference", docs.gitlab.com):
 *   GITLAB_CI=true; repo CI_PROJECT_PATH (group/project); branch
 *   CI_COMMIT_BRANCH (branch pipelines only), else, in a merge request
 *   pipeline, CI_MERGE_REQUEST_SOURCE_BRANCH_NAME (none for a tag:
 *   CI_COMMIT_TAG); commit CI_COMMIT_SHA; job_url CI_JOB_URL.
 */
static void
gitlab_vars(struct ci_vars *v)
{
	v->repo = var(v, "CI_PROJECT_PATH");
	v->branch = var(v, "CI_COMMIT_BRANCH");
	if (!v->branch)
		v->branch = var(v, "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME");
	v->commit = var(v, "CI_COMMIT_SHA");
	v->job_url = var(v, "CI_JOB_URL");
}

/*
 * Buildkite ("Environment variables", buildkite.com/docs/pipelines):
 *   BUILDKITE=true; repo BUILDKITE_REPO (the git URL); branch
 *   BUILDKITE_BRANCH (a pull request's source branch too), none when
 *   BUILDKITE_TAG is set (the branch variable then holds the tag);
 *   commit BUILDKITE_COMMIT; job_url BUILDKITE_BUILD_URL#BUILDKITE_JOB_ID.
 */
static void
buildkite_vars(struct ci_vars *v)
{
	const char *job = var(v, "BUILDKITE_JOB_ID");
	v->repo = var(v, "BUILDKITE_REPO");
	if (!var(v, "BUILDKITE_TAG"))
		v->branch = var(v, "BUILDKITE_BRANCH");
	v->commit = var(v, "BUILDKITE_COMMIT");
	v->job_url = var(v, "BUILDKITE_BUILD_URL");
	if (v->job_url && job) {
		buf_printf(&v->made_url, "%s#%s", v->job_url, job);
		v->job_url = v->made_url.p;
	}
}

/*
 * Jenkins ("Jenkins Set Environment Variables", and the git plugin's):
 *   JENKINS_URL set; repo GIT_URL; branch CHANGE_BRANCH for a change
 *   request (BRANCH_NAME is then "PR-N"), else BRANCH_NAME (multibranch)
 *   unless TAG_NAME is set, else GIT_BRANCH without its "origin/"
 *   (git plugin); commit GIT_COMMIT; job_url BUILD_URL.
 */
static void
jenkins_vars(struct ci_vars *v)
{
	bool tag = var(v, "TAG_NAME") != NULL;
	v->repo = var(v, "GIT_URL");
	v->branch = var(v, "CHANGE_BRANCH");
	if (!v->branch && !tag)
		v->branch = var(v, "BRANCH_NAME");
	if (!v->branch && !tag) {
		v->branch = var(v, "GIT_BRANCH");
		if (v->branch && strncmp(v->branch, "origin/", 7) == 0)
			v->branch += 7;
	}
	v->commit = var(v, "GIT_COMMIT");
	v->job_url = var(v, "BUILD_URL");
}

/*
 * CircleCI ("Project values and variables", circleci.com/docs):
 *   CIRCLECI=true; repo CIRCLE_PROJECT_USERNAME/CIRCLE_PROJECT_REPONAME,
 *   else CIRCLE_REPOSITORY_URL; branch CIRCLE_BRANCH (absent in a tag
 *   build, which has CIRCLE_TAG); commit CIRCLE_SHA1; job_url
 *   CIRCLE_BUILD_URL.
 */
static void
circleci_vars(struct ci_vars *v)
{
	const char *user = var(v, "CIRCLE_PROJECT_USERNAME");
	const char *name = var(v, "CIRCLE_PROJECT_REPONAME");
	v->repo = var(v, "CIRCLE_REPOSITORY_URL");
	if (user && name) {
		buf_printf(&v->made_repo, "%s/%s", user, name);
		v->repo = v->made_repo.p;
	}
	if (!var(v, "CIRCLE_TAG"))
		v->branch = var(v, "CIRCLE_BRANCH");
	v->commit = var(v, "CIRCLE_SHA1");
	v->job_url = var(v, "CIRCLE_BUILD_URL");
}

/* A CI provider: its name (the ci tag), the variable its jobs have, and
 * how to read the rest. */
struct ci_provider {
	const char *name;
	const char *marker; /* "true" in its jobs, unless any_value */
	bool any_value;
	void (*vars)(struct ci_vars *v);
};

static const struct ci_provider ci_providers[] = {
    {"github", "GITHUB_ACTIONS", false, github_vars},
    {"gitlab", "GITLAB_CI", false, gitlab_vars},
    {"buildkite", "BUILDKITE", false, buildkite_vars},
    {"circleci", "CIRCLECI", false, circleci_vars},
    /* Jenkins sets no "true" marker; its own URL is always there. */
    {"jenkins", "JENKINS_URL", true, jenkins_vars},
};

const char *
tags_detect_ci(struct tags *t, env_lookup get, void *ctx)
{
	for (size_t i = 0; i < sizeof ci_providers / sizeof ci_providers[0];
	     i++) {
		const struct ci_provider *p = &ci_providers[i];
		struct ci_vars v = {.get = get, .ctx = ctx};
		const char *marker = var(&v, p->marker);
		if (!marker || (!p->any_value && strcmp(marker, "true") != 0))
			continue;
		p->vars(&v);
		tag_detected(t, "ci", p->name);
		tag_detected(t, "repo", v.repo);
		tag_detected(t, "branch", v.branch);
		tag_detected(t, "commit", v.commit);
		tag_detected(t, "job_url", v.job_url);
		buf_free(&v.made_repo);
		buf_free(&v.made_url);
		return p->name;
	}
	return NULL;
}

/* Read the file at path (at most CGROUP_READ_MAX - 1 bytes) into buf as a
 * string; return 0 or -1. */
static int
small_file_read(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n;
	do
		n = read(fd, buf, size - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

/* The quota in CPUs of a cpu.max text ("QUOTA PERIOD"), or 0 for "max"
 * or anything unreadable. */
static double
cpu_max_quota(const char *text)
{
	char *end;
	errno = 0;
	double quota = strtod(text, &end);
	if (end == text || *end != ' ' || errno || !(quota > 0))
		return 0;
	double period = strtod(end + 1, &end);
	if (errno || !(period > 0) || (*end && *end != '\n'))
		return 0;
	return quota / period;
}

/* The cgroup v2 path in a /proc/self/cgroup text ("0::/PATH"), copied
 * into path; return 0, or -1 when there is none (cgroup v1 only). */
static int
cgroup2_path(const char *text, struct buf *path)
{
	for (const char *p = text; p && *p;) {
		const char *eol = strchr(p, '\n');
		size_t n = eol ? (size_t)(eol - p) : strlen(p);
		if (n >= 4 && strncmp(p, "0::/", 4) == 0) {
			buf_add(path, p + 3, n - 3);
			return 0;
		}
		p = eol ? eol + 1 : NULL;
	}
	return -1;
}

/* The smallest cpu.max quota from the cgroup at rel (under cgroup_fs) up
 * to the hierarchy's root, in CPUs; 0 when none is set. */
static double
cgroup_quota(const char *cgroup_fs, const char *rel)
{
	double least = 0;
	struct buf dir = {0}, file = {0};
	buf_puts(&dir, rel);
	for (;;) {
		/* "/" is the root of what is mounted: a container's own
		 * cgroup when it has a namespace. */
		while (dir.len > 1 && dir.p[dir.len - 1] == '/')
			dir.p[--dir.len] = '\0';
		char text[CGROUP_READ_MAX];
		buf_reset(&file);
		buf_printf(&file, "%s%s/cpu.max", cgroup_fs,
			   dir.len > 1 ? dir.p : "");
		double q = 0;
		if (small_file_read(file.p, text, sizeof text) == 0)
			q = cpu_max_quota(text);
		if (q > 0 && (least == 0 || q < least))
			least = q;
		if (dir.len <= 1)
			break;
		/* up one: /a/b -> /a -> / */
		char *slash = strrchr(dir.p, '/');
		dir.len = slash == dir.p ? 1 : (size_t)(slash - dir.p);
		dir.p[dir.len] = '\0';
	}
	buf_free(&dir);
	buf_free(&file);
	return least;
}

void
cpus_describe(struct buf *b, long ncpus, const char *cgroup_fs,
	      const char *proc_cgroup)
{
	struct buf rel = {0};
	double quota = 0;
	if (proc_cgroup && cgroup2_path(proc_cgroup, &rel) == 0)
		quota = cgroup_quota(cgroup_fs, rel.p);
	buf_printf(b, "%ld", ncpus);
	if (quota > 0)
		buf_printf(b, " (quota %.4g)", quota);
	buf_free(&rel);
}

/* The number of CPUs this process may run on, or what sysconf says if
 * the affinity mask cannot be read. */
static long
cpus_allowed(void)
{
	for (int n = 1024; n <= AFFINITY_CPUS_MAX; n *= 2) {
		cpu_set_t *set = CPU_ALLOC(n);
		size_t size = CPU_ALLOC_SIZE(n);
		if (!set)
			break;
		int rc = sched_getaffinity(0, size, set);
		long count = rc == 0 ? CPU_COUNT_S(size, set) : 0;
		CPU_FREE(set);
		if (rc == 0)
			return count;
		if (errno != EINVAL) /* EINVAL: the set is too small */
			break;
	}
	return sysconf(_SC_NPROCESSORS_ONLN);
}

void
mem_total_describe(struct buf *b, uint64_t total_kib)
{
	buf_printf(b, "%.1f GiB", (double)total_kib / (1024.0 * 1024.0));
}

void
tags_detect_machine(struct tags *t)
{
	struct utsname u;
	struct buf v = {0};
	char text[CGROUP_READ_MAX];
	if (uname(&u) == 0) {
		tag_detected(t, "host", u.nodename);
		tag_detected(t, "kernel", u.release);
	}
	cpus_describe(&v, cpus_allowed(), "/sys/fs/cgroup",
		      small_file_read("/proc/self/cgroup", text, sizeof text) ==
			      0
			  ? text
			  : NULL);
	tag_detected(t, "cpus", v.p);
	int fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
	struct meminfo mi;
	if (fd >= 0 && meminfo_read(fd, &mi) == 0 && mi.has_total) {
		buf_reset(&v);
		mem_total_describe(&v, mi.total_kib);
		tag_detected(t, "mem_total", v.p);
	}
	if (fd >= 0)
		close(fd);
	buf_free(&v);
}
