/*
 * More than CPU (SPEC 6.3), the client's side: memory with every sample,
 * the command's own resources, tags and what the client detects, and the
 * GitHub Actions step summary. A section per file:
 *   meminfo.c       /proc/meminfo: the share of memory in use
 *   child.c         (child_reap) the command's CPU seconds and max RSS
 *   tags.c          KEY=VALUE tags, their limits, machine and CI detection
 *   step_summary.c  the run as a Markdown table for $GITHUB_STEP_SUMMARY
 *
 * The sender sends memory with each sample, the tags with the create and
 * the command's figures with the stop; the summary line prints them and
 * spool files keep them for --replay.
 */
#ifndef GH_CLIENT_METRICS_H
#define GH_CLIENT_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

/* ---- meminfo.c -------------------------------------------------------- */

/* The two lines of /proc/meminfo that memory in use is made of (kB, which
 * the kernel means as KiB). */
struct meminfo {
	uint64_t total_kib, available_kib;
	bool has_total, has_available;
};

/* Parse a /proc/meminfo text: MemTotal and MemAvailable, wherever they
 * are. Only whole lines count (a read may cut the last one); a line that
 * is not "Key: <digits> kB" leaves its field unknown. */
void meminfo_parse(const char *text, size_t len, struct meminfo *out);
/* 1 - MemAvailable/MemTotal. Return 0, or -1 when it cannot be known:
 * no MemAvailable (kernels before 3.14), no or zero MemTotal, or
 * MemAvailable above MemTotal. */
int meminfo_usage(const struct meminfo *mi, double *usage);
/* pread from the start of a /proc file (a fresh reading each time), again
 * after EINTR; return what pread returns. */
ssize_t proc_pread(int fd, char *buf, size_t size);
/* Read /proc/meminfo afresh from fd (kept open, read with pread); return
 * 0 or -1 with errno set. */
int meminfo_read(int fd, struct meminfo *mi);

/* ---- child.c ---------------------------------------------------------- */

/* What wait4(2) says the command used, itself and every descendant it
 * waited for: CPU seconds, and the largest peak resident set of any one
 * of those processes (not their sum). */
struct command_usage {
	bool known; /* false with --no-command, or a replay of an old spool */
	double user_cpu, system_cpu; /* seconds */
	int64_t max_rss_kib;
};

/* Reap pid if it has ended (never blocking): return pid and set *wstatus
 * and *use, 0 if it still runs, or -1 with errno set. */
pid_t child_reap(pid_t pid, int *wstatus, struct command_usage *use);

/* ---- tags.c ----------------------------------------------------------- */

/* SPEC 6.3's limits on a test's tags. */
#define TAGS_MAX 32
#define TAG_KEY_MAX 64	  /* characters of [A-Za-z0-9_./-], at least 1 */
#define TAG_VALUE_MAX 256 /* characters (code points) of UTF-8 */

struct tag {
	char *key, *value;
};

/* A test's tags, in the order they were first set. */
struct tags {
	size_t n;
	struct tag item[TAGS_MAX];
};

void tags_free(struct tags *t);
/* The value of key, or NULL. */
const char *tags_get(const struct tags *t, const char *key);
/* Set key to value (replacing its earlier value). Return 0, or -1 with a
 * one-line reason in err when the key or value breaks a limit or there
 * are TAGS_MAX tags already. */
int tags_set(struct tags *t, const char *key, const char *value, char *err,
	     size_t errlen);
/* "KEY=VALUE" (split at the first '='), as --tag will give it. */
int tags_add_arg(struct tags *t, const char *arg, char *err, size_t errlen);

/* How detection reads the environment (getenv, or a table in tests). */
typedef const char *(*env_lookup)(const char *name, void *ctx);
const char *env_getenv(const char *name, void *ctx);

/* In CI, the tags the provider's documented variables give: ci, repo,
 * branch (none for a tag build), commit, job_url. Values that are empty
 * or break a limit are left out. Return the provider's name or NULL. */
const char *tags_detect_ci(struct tags *t, env_lookup get, void *ctx);
/* host, cpus, mem_total, kernel: this machine as the run sees it. */
void tags_detect_machine(struct tags *t);
/* The CPUs the process may use, "N", or "N (quota Q)" under a cgroup v2
 * cpu.max quota of Q CPUs (the smallest from its cgroup up to the root of
 * the hierarchy mounted at cgroup_fs). proc_cgroup is the text of
 * /proc/self/cgroup, or NULL. */
void cpus_describe(struct buf *b, long ncpus, const char *cgroup_fs,
		   const char *proc_cgroup);
/* Memory as the mem_total tag shows it: "15.6 GiB". */
void mem_total_describe(struct buf *b, uint64_t total_kib);

/* ---- step_summary.c --------------------------------------------------- */

struct run_stats;
struct comparison;

/* The run as a short Markdown table (and its link), as appended to
 * $GITHUB_STEP_SUMMARY, then its comparison with its baseline and the
 * gate's verdict, when cmp has them. exit_status < 0: none; server NULL:
 * no link; cmp NULL: no comparison. */
void step_summary_format(struct buf *b, const struct run_stats *st,
			 const char *name, int exit_status, const char *server,
			 const struct comparison *cmp);
/* Append the run to the file GITHUB_STEP_SUMMARY names, if it names one,
 * in one write; on failure print a warning and go on. */
void step_summary_write(const struct run_stats *st, const char *name,
			int exit_status, const char *server,
			const struct comparison *cmp);

#endif
