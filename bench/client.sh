#!/bin/bash
# The client's own cost: CPU time, private dirty memory and PSS (what it
# costs the machine) and peak RSS of `grasshopper -- sleep 60`
# at the default interval, next to `sleep 60` alone, both measured side by
# side in the same run. A benchmark for people, not a test: never part of
# `make check`.
#
#   bench/client.sh [path/to/grasshopper]        (or: make bench)
#
# The samples go to GRASSHOPPER_SERVER with GRASSHOPPER_JWT when both are
# set; otherwise a private stack is started (t/lib/GH/Stack.pm, with the
# tracker built next to the client). BENCH_SECONDS changes the 60.
#
# CPU comes from getrusage(2) via bash's `time` (millisecond resolution);
# peak RSS from /usr/bin/time -v (ru_maxrss, what `-f %M` prints). Both
# include the wrapped `sleep`, which is why the same figures for `sleep`
# alone are shown and subtracted. Peak RSS also counts every page of the
# shared libraries grasshopper touched (Debian's libcurl alone brings 33 of
# them: OpenSSL, GnuTLS, Kerberos, LDAP...). The "halfway" lines, read from
# /proc while it runs, split RSS into shared and private pages, then by what
# the pages map (each file, largest first; heap, stacks), and give the peak
# so far.
set -eu

bin=$(cd "$(dirname "${1:-./grasshopper}")" && pwd)/$(basename "${1:-./grasshopper}")
srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=$(dirname "$bin")
secs=${BENCH_SECONDS:-60}
[ -x "$bin" ] || { echo "bench/client.sh: no grasshopper at $bin" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench/client.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

tmp=$(mktemp -d /tmp/gh-bench-XXXXXX)
stack_pid=
cleanup() {
	exec 3>&- 2>/dev/null || true # closing the fifo stops the stack
	[ -n "$stack_pid" ] && wait "$stack_pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

if [ -z "${GRASSHOPPER_SERVER:-}" ] || [ -z "${GRASSHOPPER_JWT:-}" ]; then
	echo "starting a private tracker stack..." >&2
	mkfifo "$tmp/hold"
	GH_SRCDIR=$srcdir GH_BUILDDIR=$builddir \
		perl -I"$srcdir/t/lib" "$srcdir/bench/client-stack.pl" \
		<"$tmp/hold" >"$tmp/stack.out" 2>"$tmp/stack.err" &
	stack_pid=$!
	exec 3>"$tmp/hold"
	for _ in $(seq 600); do
		[ -s "$tmp/stack.out" ] && break
		kill -0 "$stack_pid" 2>/dev/null || break
		sleep 0.2
	done
	read -r GRASSHOPPER_SERVER GRASSHOPPER_JWT <"$tmp/stack.out" || {
		echo "bench/client.sh: the stack did not start:" >&2
		cat "$tmp/stack.err" >&2
		exit 1
	}
	export GRASSHOPPER_SERVER GRASSHOPPER_JWT
fi

# measure NAME CMD...: CPU (user sys, seconds) to $tmp/NAME.cpu, the
# /usr/bin/time -v report to $tmp/NAME.time, stderr to $tmp/NAME.err.
measure() {
	local name=$1
	shift
	local TIMEFORMAT='%3R %3U %3S'
	{ time /usr/bin/time -v -o "$tmp/$name.time" "$@" 2>"$tmp/$name.err"; } \
		2>"$tmp/$name.cpu"
}

# where SMAPS: the resident pages by what they map, so a change to the
# client's memory can be told from the libraries': per file (largest first;
# a library's relocated data counts with it) and anonymous (heap, stacks,
# the rest).
where() {
	awk '
	/^[0-9a-f]+-[0-9a-f]+ / {
		name = $6
		if (name ~ /^\//) { sub(/.*\//, "", name); kind = "file" }
		else if (name == "[heap]") kind = "heap"
		else if (name ~ /^\[stack/) kind = "stack"
		else if (name == "") kind = "anon"
		else kind = "other"
		next
	}
	/^Rss:/ {
		if (kind == "file") { file[name] += $2; ftot += $2 }
		else if (kind != "other") { anon[kind] += $2; atot += $2 }
	}
	END {
		for (f in file) names[++n] = f
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && file[names[j]] > file[names[j - 1]]; j--) {
				t = names[j]; names[j] = names[j - 1]; names[j - 1] = t
			}
		for (i = 1; i <= n && i <= 5; i++)
			top = top (i > 1 ? ", " : "") names[i] " " file[names[i]]
		printf "halfway, where: %d KiB in mappings of %d files (%s%s); %d KiB anonymous (heap %d, main stack %d, other %d)\n",
			ftot, n, top, (n > 5 ? ", ..." : ""), atot, anon["heap"], anon["stack"], anon["anon"]
	}' "$1"
}

echo "measuring for ${secs} s: grasshopper -- sleep $secs, and sleep $secs alone, side by side" >&2
name=bench-$$
measure client "$bin" -n "$name" -- sleep "$secs" &
client_pid=$!
measure baseline sleep "$secs" &
baseline_pid=$!

# Halfway through, what grasshopper's memory is made of: RSS counts every
# page of the shared libraries it touched (libcurl brings 33 of them), PSS
# shares those out among the processes using them, Private is its own.
sleep "$(awk -v s="$secs" 'BEGIN { print s / 2 }')"
gh_pid=$(pgrep -f -n -- "-n $name --" || true)
if [ -n "$gh_pid" ] && [ -r "/proc/$gh_pid/smaps_rollup" ]; then
	awk '/^(Rss|Pss|Private_Clean|Private_Dirty|Shared_Clean):/ { kb[$1] = $2 }
	END { printf "halfway, grasshopper (pid %s): RSS %d KiB = %d KiB shared library pages + %d KiB private; PSS %d KiB\n",
		pid, kb["Rss:"], kb["Shared_Clean:"], kb["Private_Clean:"] + kb["Private_Dirty:"], kb["Pss:"]
	      printf "halfway, what it costs the machine: PSS %d KiB, private dirty %d KiB\n", kb["Pss:"], kb["Private_Dirty:"] }' \
		pid="$gh_pid" "/proc/$gh_pid/smaps_rollup" >"$tmp/memory"
	where "/proc/$gh_pid/smaps" >>"$tmp/memory" || true
	sed -n 's/^VmHWM:[[:space:]]*/halfway, peak so far (VmHWM): /p' \
		"/proc/$gh_pid/status" >>"$tmp/memory" || true
fi
wait "$client_pid" "$baseline_pid" || true

rss() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$tmp/$1.time"; }
read -r c_wall c_user c_sys <"$tmp/client.cpu"
read -r b_wall b_user b_sys <"$tmp/baseline.cpu"
c_rss=$(rss client)
b_rss=$(rss baseline)

echo
grep '^grasshopper:' "$tmp/client.err" || true
echo
cat "$tmp/memory" 2>/dev/null || true
pss=$(sed -n 's/^halfway, what it costs the machine: PSS \([0-9]*\) KiB, private dirty \([0-9]*\) KiB$/\1/p' "$tmp/memory" 2>/dev/null)
dirty=$(sed -n 's/^halfway, what it costs the machine: PSS \([0-9]*\) KiB, private dirty \([0-9]*\) KiB$/\2/p' "$tmp/memory" 2>/dev/null)
awk -v secs="$secs" -v cw="$c_wall" -v cu="$c_user" -v cs="$c_sys" -v cr="$c_rss" \
	-v bw="$b_wall" -v bu="$b_user" -v bs="$b_sys" -v br="$b_rss" \
	-v pss="${pss:-}" -v dirty="${dirty:-}" '
function row(name, wall, cpu, rss) {
	printf "%-30s %8.3f %10.3f %9.3f%% %10d\n", name, wall, cpu, 100 * cpu / wall, rss
}
BEGIN {
	printf "%-30s %8s %10s %10s %10s\n", "", "wall s", "CPU s", "of a core", "max RSS KiB"
	row("grasshopper -- sleep " secs, cw, cu + cs, cr)
	row("sleep " secs " (baseline)", bw, bu + bs, br)
	own = (cu + cs) - (bu + bs)
	if (own < 0) own = 0
	row("grasshopper itself", cw, own, cr)
	pct = 100 * own / cw
	printf "\ntarget CPU, under 0.2%% of one core: %s (%.3f%%)\n",
		pct < 0.2 ? "met" : "NOT met", pct
	# Peak RSS is mostly clean pages of shared libraries (libcurl and its
	# chain), shared with every other process that maps them: what the
	# client costs the machine is judged by its private dirty pages and
	# its proportional share (PSS). Peak RSS is reported, not judged.
	if (dirty == "" || pss == "") {
		print "target private dirty and PSS: not measured (no /proc/PID/smaps_rollup halfway)"
		exit
	}
	printf "target private dirty, under 2 MiB: %s (%d KiB)\n",
		dirty < 2048 ? "met" : "NOT met", dirty
	printf "target PSS, under 5 MiB: %s (%d KiB)\n",
		pss < 5120 ? "met" : "NOT met", pss
	printf "peak RSS, reported: %.1f MiB\n", cr / 1024
}'
