#!/usr/bin/perl
# make bench: every benchmark of issue 6 in one run, on one private stack
# (t/lib/GH/Stack.pm: PostgreSQL 15 + the tracker's pool + nginx), each
# result printed next to its reference measured in the same run, as a ratio.
# The machine is shared and noisy; the ratios are what to compare.
#
#   perl bench/run.pl            (GH_SRCDIR, GH_BUILDDIR: where things are)
#
# Environment:
#   BENCH_SECONDS         length of each wrk/pgbench run (default 10)
#   BENCH_CONNECTIONS     wrk connections for the POSTs (default 64)
#   BENCH_WORKERS         TRACKER_WORKERS (default: the tracker's, one per
#                         core)
#   BENCH_THREADS         TRACKER_THREADS (default: the tracker's, 32)
#   BENCH_DB_CONNECTIONS  TRACKER_DB_CONNECTIONS (default: the tracker's, 1)
#   BENCH_SAMPLES         samples in the "big" test for the GET row
#                         (default 1000000)
#   BENCH_CLIENT_SECONDS  how long bench/client.sh wraps sleep (default 60;
#                         0 skips that row)
#   BENCH_ROUNDS          pgbench and the POST run alternate this many times;
#                         the table has the medians (default 3)
#   BENCH_BASELINE        a commit whose tracker also runs the POSTs in every
#                         round, side by side with this build's (built once,
#                         with this build's configure arguments, under
#                         $GH_BUILDDIR/bench-baseline/); default: the commit
#                         before the one that added schema/005_tokens.sql,
#                         i.e. the tracker without the revocation check;
#                         "none" skips it
#   BENCH_MEM             1 (default): each round also runs the POSTs with
#                         a mem_usage in every sample (SPEC 6.3), next to
#                         the ones without; 0 skips that run
#   BENCH_BASELINE_QUERY  1 (default): run bench/baseline.pl (GET
#                         /test/:id/baseline at 100 and 100 000 tests of a
#                         user, on a stack of its own) after the rest; 0
#                         skips it
#
# The cluster is made durable before anything is measured: fsync,
# synchronous_commit and full_page_writes on (ALTER SYSTEM + restart; the
# test harness turns them off for its throwaway clusters), and
# pg_stat_statements loaded for the "where the time goes" figures.
#
# Needs wrk (apt-get install wrk), pgbench (postgresql-15), /usr/bin/time.
use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use POSIX qw(floor);
use Time::HiRes qw(time sleep);

my $srcdir;
BEGIN {
	$srcdir = $ENV{GH_SRCDIR} || abs_path(dirname(__FILE__) . '/..');
	$ENV{GH_SRCDIR} = $srcdir;
}
use lib "$srcdir/t/lib";
use GH::Stack qw(now_us ts);

$| = 1;
my $T0 = time;
my $SECS = $ENV{BENCH_SECONDS} || 10;
my $CONNS = $ENV{BENCH_CONNECTIONS} || 64;
my $NCPU = () = (do { local (@ARGV, $/) = '/proc/cpuinfo'; <> } =~ /^processor/mg);
my $WORKERS = $ENV{BENCH_WORKERS} || $NCPU || 2;
my $TTHREADS = $ENV{BENCH_THREADS} || 32;
my $DBCONNS = $ENV{BENCH_DB_CONNECTIONS} || 1;
# Transactions the pool can have in flight: pgbench's first reference runs
# that many clients.
my $INFLIGHT = $WORKERS * $DBCONNS;
my $BIG = $ENV{BENCH_SAMPLES} || 1_000_000;
my $CLIENT_SECS = $ENV{BENCH_CLIENT_SECONDS} // 60;
my $ROUNDS = $ENV{BENCH_ROUNDS} || 3;
my $THREADS = 2;
my $PGBENCH = '/usr/lib/postgresql/15/bin/pgbench';
my $builddir = $ENV{GH_BUILDDIR} ||= $srcdir;

for (['wrk', 'apt-get install wrk'], [$PGBENCH, 'apt-get install postgresql-15']) {
	my ($bin, $how) = @$_;
	my $ok = $bin =~ m{/} ? -x $bin : grep { -x "$_/$bin" } split /:/, $ENV{PATH};
	die "bench/run.pl: needs $bin ($how)\n" unless $ok;
}

sub note { printf STDERR "[%5.0fs] %s\n", time - $T0, join '', @_ }

# baseline_tracker → ($binary, $commit) of BENCH_BASELINE's tracker, built
# once from `git archive` with this build's configure arguments; () when
# there is none (BENCH_BASELINE=none, or no git history to take it from).
sub baseline_tracker {
	my $want = $ENV{BENCH_BASELINE} // 'auto';
	return () if $want eq 'none';
	my $git = sub {
		open my $fh, '-|', 'git', '-C', $srcdir, @_ or return undef;
		my $out = do { local $/; <$fh> } // '';
		close $fh;
		chomp $out;
		return $? ? undef : $out;
	};
	if ($want eq 'auto') {
		my $added = $git->(qw(log --diff-filter=A --format=%H -1 -- schema/005_tokens.sql));
		unless ($added) {
			note "no git history: no baseline tracker (BENCH_BASELINE=COMMIT sets one)";
			return ();
		}
		$want = "$added^";
	}
	my $commit = $git->('rev-parse', '--verify', '--quiet', "$want^{commit}")
		or die "bench/run.pl: BENCH_BASELINE=$want is not a commit\n";
	my $dir = "$builddir/bench-baseline/" . substr($commit, 0, 12);
	my $bin = "$dir/build/grasshopper-tracker";
	return ($bin, $commit) if -x $bin;
	open my $cs, '-|', "$builddir/config.status", '--config' or die "config.status: $!";
	my $args = do { local $/; <$cs> } // '';
	close $cs;
	chomp $args;
	note "building the baseline tracker of ", substr($commit, 0, 12), " in $dir, once "
		. "(configure $args)...";
	system('sh', '-ec', 'rm -rf "$1" && mkdir -p "$1/src" "$1/build" && '
		. 'git -C "$2" archive "$3" | tar -x -C "$1/src" && cd "$1/src" && '
		. './autogen.sh >../autogen.log 2>&1 && cd ../build && '
		. 'eval "../src/configure $4" >../configure.log 2>&1 && '
		. 'make -j2 grasshopper-tracker >../make.log 2>&1', 'sh', $dir, $srcdir, $commit, $args) == 0
		or die "bench/run.pl: building the baseline tracker failed: see $dir/*.log\n";
	return ($bin, $commit);
}
my ($BASE_BIN, $BASE_COMMIT) = baseline_tracker();

# ---------------------------------------------------------------------------
# The stack, made durable

note "starting a private stack ($WORKERS workers x $TTHREADS threads, $DBCONNS database connections each)...";
my $s = GH::Stack->new(workers => $WORKERS, quiet => 1, wrapper => undef,
	# One user's token drives wrk: no per-user rate limit.
	env => {TRACKER_THREADS => $TTHREADS, TRACKER_DB_CONNECTIONS => $DBCONNS,
		TRACKER_USER_RATE => 0})->start;
$s->psql($_) for
	"ALTER SYSTEM SET fsync = on",
	"ALTER SYSTEM SET synchronous_commit = on",
	"ALTER SYSTEM SET full_page_writes = on",
	"ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'",
	"ALTER SYSTEM SET max_connections = 100";
$s->stop_tracker;
$s->stop_postgres or die "pg_ctl stop failed\n";
$s->start_postgres;
$s->start_tracker;
$s->wait_healthy or die "the stack is not healthy after the restart\n";
my %pg = map { $_ => $s->psql("SHOW $_") } qw(fsync synchronous_commit full_page_writes);
die "the cluster is not durable: " . join(', ', map "$_=$pg{$_}", sort keys %pg) . "\n"
	if grep { $pg{$_} ne 'on' } keys %pg;
$s->psql($_) for 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements',
	# Known only once the library is loaded; both reloadable.
	"ALTER SYSTEM SET pg_stat_statements.track = 'all'",
	"ALTER SYSTEM SET track_wal_io_timing = on",
	'SELECT pg_reload_conf()';

# The bench's own nginx location, injected into the expanded template (the
# shipped template is not changed), then nginx reloaded.
{
	my $conf = $s->dir . '/nginx.conf';
	open my $in, '<', $conf or die "$conf: $!";
	my $text = do { local $/; <$in> };
	close $in;
	$text =~ s/(\n\s*server_name _;\n)/$1\t\tlocation = \/bench\/204 { access_log off; return 204; }\n/
		or die "could not inject /bench/204 into $conf\n";
	open my $out, '>', $conf or die "$conf: $!";
	print $out $text;
	close $out;
	$s->reload_nginx or die "could not reload nginx\n";
	my $deadline = time + 10;
	until ($s->api(GET => '/bench/204')->{status} == 204) {
		die "nginx did not pick up /bench/204\n" if time > $deadline;
		sleep 0.1;
	}
}

my $u = $s->user;
my $token = $u->token;
my @tests = map {
	my $r = $u->api(POST => 'test', {name => "bench-$_", threshold => 0.5});
	$r->{status} == 201 or die "POST test: $r->{status} $r->{content}\n";
	$r->{json}{id};
} 1 .. $CONNS;

# ---------------------------------------------------------------------------
# Runners

# wrk(%o) → {rps, p50, p99 (ms), non2xx, requests, errors}
sub wrk {
	my (%o) = @_;
	my @cmd = ('wrk', '-t', $o{threads} // $THREADS, '-c', $o{conns},
		'-d', "${SECS}s", '--latency', '--timeout', '10s');
	push @cmd, '-s', $o{script} if $o{script};
	push @cmd, '-H', $_ for @{ $o{headers} || [] };
	push @cmd, $s->url . $o{path};
	local %ENV = (%ENV, %{ $o{env} || {} });
	open my $fh, '-|', @cmd or die "wrk: $!";
	my $out = do { local $/; <$fh> };
	close $fh;
	die "wrk failed: $out\n" if $?;
	my %r = (out => $out);
	($r{rps}) = $out =~ /Requests\/sec:\s+([\d.]+)/;
	($r{requests}) = $out =~ /(\d+) requests in/;
	$r{non2xx} = $out =~ /Non-2xx or 3xx responses:\s+(\d+)/ ? $1 : 0;
	$r{errors} = $out =~ /Socket errors:\s*(.*)/ ? $1 : '';
	for my $p (50, 99) {
		my ($v, $unit) = $out =~ /^\s+$p(?:\.000)?%\s+([\d.]+)(us|ms|s)\b/m;
		$r{"p$p"} = defined $v ? $v * {us => 0.001, ms => 1, s => 1000}->{$unit} : undef;
	}
	return \%r;
}

# pgbench($clients) → tps
sub pgbench {
	my ($clients) = @_;
	my $dir = $s->dir;
	my @cmd = ($PGBENCH, '-n', '-M', 'prepared', '-f', "$dir/insert.sql",
		'-c', $clients, '-j', ($clients < $THREADS ? $clients : $THREADS),
		'-T', $SECS, '-h', "$dir/pg", '-p', 5432, '-U', 'postgres', 'grasshopper');
	open my $fh, '-|', "@cmd 2>&1" or die "pgbench: $!";
	my $out = do { local $/; <$fh> };
	close $fh;
	die "pgbench failed: $out\n" if $?;
	my ($tps) = $out =~ /tps = ([\d.]+) \(without initial connection time\)/;
	return $tps;
}

# sys_busy: seconds of CPU the whole machine has spent busy (all cores,
# from /proc/stat): its delta over a run, divided by what the run did, is
# the machine-wide CPU cost of one operation (pgbench's backends exit with
# their connections, so per-process figures cannot be had for it).
sub sys_busy {
	open my $fh, '<', '/proc/stat' or return 0;
	my @f = split ' ', scalar <$fh>;
	shift @f;
	my $hz = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;
	my $total = 0;
	$total += $_ for @f[0 .. 7];
	return ($total - $f[3] - $f[4]) / $hz;    # minus idle and iowait
}

# cpu_by_comm: process name => CPU seconds (user + system) of every live
# process, from /proc (postgres backends, tracker workers, nginx, wrk).
sub cpu_by_comm {
	my %c;
	my $hz = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;
	opendir my $d, '/proc' or return %c;
	for my $pid (grep /^\d+$/, readdir $d) {
		open my $fh, '<', "/proc/$pid/stat" or next;
		my $st = <$fh> // next;
		my ($comm, $rest) = $st =~ /^\d+ \((.*)\) (.*)$/s or next;
		my @f = split ' ', $rest;
		# Not kernel threads (PF_KTHREAD): they change names as they take
		# work, and a renamed one would count its whole life.
		next if $f[6] & 0x00200000;
		$c{"$comm\0$pid"} = ($f[11] + $f[12]) / $hz;
	}
	return %c;
}

sub pg_reset_stats { $s->psql('SELECT pg_stat_statements_reset()') }

# ---------------------------------------------------------------------------
# Throughput: pgbench, nginx 204, the FastCGI floor, the usage POSTs

# The same one-row INSERT as usage_add's, into a table shaped like usage.
$s->psql('CREATE TABLE bench_usage (test_id bigint NOT NULL, '
	. 'ts timestamptz NOT NULL, cpu_usage double precision NOT NULL '
	. 'CHECK (cpu_usage >= 0 AND cpu_usage <= 1), PRIMARY KEY (test_id, ts))');
{
	open my $fh, '>', $s->dir . '/insert.sql' or die $!;
	print $fh "INSERT INTO bench_usage (test_id, ts, cpu_usage) "
		. "VALUES (:client_id, clock_timestamp(), 0.5) ON CONFLICT DO NOTHING;\n";
	close $fh;
}
my %res;

note "wrk: nginx return 204, $CONNS connections...";
$res{ng204} = wrk(conns => $CONNS, path => '/bench/204');

note "wrk: FastCGI floor (GET /api/v1/test/0 → 404, no database), $CONNS connections...";
$res{floor} = wrk(conns => $CONNS, path => '/api/v1/test/0',
	headers => ["Authorization: Bearer $token"]);
{
	my $r = $u->api(GET => 'test/0');
	die "floor: GET /api/v1/test/0 answered $r->{status}, expected 404\n"
		unless $r->{status} == 404;
}

# pgbench and the POST run alternate, $ROUNDS times over: on a shared,
# noisy machine one 10-second run of each can land in different weather.
# The table gives the median of each figure over the rounds (and each
# round's ratio below it); the details of where the time goes are those of
# the last round, whose pgbench runs came just before its POST run.
my (%rounds, $tpost, $busy_post, %cpu, $stmts, $commits, $wal_records,
	$wal_syncs, $wal_sync_ms, $wal_writes, $last);
my $stored = 0;
my $THIS_BIN = $s->tracker_bin;
# The baseline's POST run: the same wrk run against the pool restarted with
# the baseline's binary (same database, same token, same tests), then this
# build's pool again.
my $baseline_post = sub {
	my ($round) = @_;
	note "round $round/$ROUNDS: wrk: the same POSTs, baseline tracker ", substr($BASE_COMMIT, 0, 12), "...";
	$s->stop_tracker;
	$s->tracker_bin($BASE_BIN);
	$s->start_tracker;
	$s->wait_healthy or die "the baseline tracker is not healthy\n";
	push @{ $rounds{base} }, wrk(conns => $CONNS, path => '/', script => "$srcdir/bench/usage-post.lua",
		env => {BENCH_TOKEN => $token, BENCH_TESTS => join(',', @tests),
			BENCH_BASE_US => now_us(), BENCH_THREADS => $THREADS});
	$s->stop_tracker;
	$s->tracker_bin($THIS_BIN);
	$s->start_tracker;
	$s->wait_healthy or die "the tracker is not healthy again\n";
};
# The POSTs with memory: the same wrk run, every sample with a mem_usage.
my $MEM = $ENV{BENCH_MEM} // 1;
my $mem_post = sub {
	my ($round) = @_;
	note "round $round/$ROUNDS: wrk: the same POSTs, every sample with mem_usage...";
	push @{ $rounds{mem} }, wrk(conns => $CONNS, path => '/', script => "$srcdir/bench/usage-post.lua",
		env => {BENCH_TOKEN => $token, BENCH_TESTS => join(',', @tests),
			BENCH_BASE_US => now_us(), BENCH_THREADS => $THREADS, BENCH_MEM => 1});
};
for my $round (1 .. $ROUNDS) {
	for my $c ($INFLIGHT, 16) {
		note "round $round/$ROUNDS: pgbench -M prepared, $c clients, ${SECS}s...";
		my $b0 = sys_busy();
		my $tps = pgbench($c);
		push @{ $rounds{"pgbench_$c"} }, $tps;
		$res{"pgbench_cpu_$c"} = (sys_busy() - $b0) / (($tps || 1) * $SECS);
	}
	# The baseline's run is next to this build's, before it in even rounds
	# and after it in odd ones, so drift over the run favours neither.
	$baseline_post->($round) if $BASE_BIN && $round % 2 == 0;
	$mem_post->($round) if $MEM && $round % 2 == 0;
	note "round $round/$ROUNDS: wrk: durable usage POSTs, $CONNS connections, "
		. scalar(@tests) . " tests...";
	my $before = $s->psql('SELECT count(*) FROM usage');
	pg_reset_stats();
	$s->psql("SELECT pg_stat_reset_shared('wal')");
	my $commits0 = $s->psql("SELECT xact_commit FROM pg_stat_database WHERE datname = 'grasshopper'");
	my %cpu0 = cpu_by_comm();
	my $busy0 = sys_busy();
	$tpost = time;
	$last = wrk(conns => $CONNS, path => '/', script => "$srcdir/bench/usage-post.lua",
		env => {BENCH_TOKEN => $token, BENCH_TESTS => join(',', @tests),
			BENCH_BASE_US => now_us(),
			BENCH_THREADS => $THREADS});
	push @{ $rounds{post} }, $last;
	$tpost = time - $tpost;
	$busy_post = sys_busy() - $busy0;
	my %cpu1 = cpu_by_comm();
	%cpu = ();
	for my $k (keys %cpu1) {
		my ($comm) = split /\0/, $k;
		$comm = 'postgres' if $comm =~ /^postgres/;
		$cpu{$comm} += $cpu1{$k} - ($cpu0{$k} // 0);
	}
	$stored += $s->psql('SELECT count(*) FROM usage') - $before;
	$stmts = $s->psql(q{SELECT calls, round(mean_exec_time::numeric, 3), }
		. q{round(total_exec_time::numeric, 0), left(regexp_replace(query, '\s+', ' ', 'g'), 60) }
		. q{FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'grasshopper') }
		. q{ORDER BY total_exec_time DESC LIMIT 6});
	$commits = $s->psql("SELECT xact_commit FROM pg_stat_database WHERE datname = 'grasshopper'") - $commits0;
	($wal_records, $wal_syncs, $wal_sync_ms, $wal_writes) = split /\|/,
		$s->psql(q{SELECT wal_records, wal_sync, wal_sync_time, wal_write FROM pg_stat_wal});
	$baseline_post->($round) if $BASE_BIN && $round % 2 == 1;
	$mem_post->($round) if $MEM && $round % 2 == 1;
}
sub median {
	my @v = sort { $a <=> $b } grep { defined } @_;
	return undef unless @v;
	return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}
$res{"pgbench_$_"} = median(@{ $rounds{"pgbench_$_"} }) for $INFLIGHT, 16;
my @round_best = map {
	my $i = $_;
	(sort { $b <=> $a } map { $rounds{"pgbench_$_"}[$i] // 0 } $INFLIGHT, 16)[0]
} 0 .. $ROUNDS - 1;
my $pg_best = median(@round_best);
# Each round's POSTs against that round's pgbench: the ratio in the table is
# the median of these, the most side by side the machine allows.
my $post_ratio = median(map { $round_best[$_] ? ($rounds{post}[$_]{rps} // 0) / $round_best[$_] : undef }
	0 .. $ROUNDS - 1);
$res{post} = {
	(map { my $k = $_; ($k => median(map { $_->{$k} } @{ $rounds{post} })) } qw(rps p50 p99)),
	requests => $last->{requests},
	non2xx => 0, errors => '',
};
for my $r (@{ $rounds{post} }) {
	$res{post}{all_requests} += $r->{requests} // 0;
	$res{post}{non2xx} += $r->{non2xx};
	$res{post}{errors} .= ($res{post}{errors} ? '; ' : '') . $r->{errors} if $r->{errors};
}
my $base_ratio = $BASE_BIN ? median(map { ($rounds{base}[$_]{rps} // 0) > 0
	? ($rounds{post}[$_]{rps} // 0) / $rounds{base}[$_]{rps} : undef } 0 .. $ROUNDS - 1) : undef;
my $mem_ratio = $MEM ? median(map { ($rounds{post}[$_]{rps} // 0) > 0
	? ($rounds{mem}[$_]{rps} // 0) / $rounds{post}[$_]{rps} : undef } 0 .. $ROUNDS - 1) : undef;
my ($ua_mean) = $stmts =~ /^\d+\|([\d.]+)\|\d+\|SELECT status, stored, above FROM usage_add/m;

# ---------------------------------------------------------------------------
# GET /api/v1/test/:id with BIG samples vs 10

note "loading $BIG samples into one test (usage_add calls of 1000, as the API takes them)...";
my $uid = $u->id;
my ($small, $big) = map {
	my $r = $u->api(POST => 'test', {name => "get-$_", start_time => ts(now_us() - 86400_000_000)});
	$r->{status} == 201 or die "POST test: $r->{status}\n";
	$r->{json}{id};
} qw(small big);
# Each call its own transaction, as the tracker's would be: usage_add packs
# the samples into chunks as they come, and usage_recent, the queue they pass
# through, is a queue, not a million rows at once.
my $load = sub {
	my ($test, $n) = @_;
	my $t = time;
	$s->psql(qq{DO \$\$ DECLARE r record; BEGIN
		FOR b IN 0 .. ($n - 1) / 1000 LOOP
			SELECT * INTO r FROM (SELECT array_agg(now() - interval '23 hours' + g * interval '1 millisecond' ORDER BY g) AS ts,
				array_agg((g % 100) / 100.0::float8 ORDER BY g) AS cpu
				FROM generate_series(b * 1000 + 1, least($n, b * 1000 + 1000)) AS g) AS a,
				usage_add($uid, $test, a.ts, a.cpu) AS x;
			IF r.status <> 'ok' THEN RAISE EXCEPTION 'usage_add: %', r.status; END IF;
			COMMIT;
		END LOOP; END \$\$});
	my $got = $s->psql("SELECT samples FROM tests WHERE id = $test");
	die "loaded $got samples, not $n\n" unless $got == $n;
	return time - $t;
};
$load->($small, 10);
my $load_secs = $load->($big, $BIG);
note sprintf "  loaded in %.1fs; VACUUM (ANALYZE) usage_recent, usage_chunk; CHECKPOINT", $load_secs;
# Steady state before reading: autovacuum/analyze of the fresh million rows
# and the checkpoint they cause would otherwise land inside one GET run.
$s->psql('VACUUM (ANALYZE) usage_recent, usage_chunk');
$s->psql('CHECKPOINT');
for my $which (['small', $small], ['big', $big]) {
	my $r = $u->api(GET => "test/$which->[1]");
	die "GET test/$which->[1]: $r->{status}\n" unless $r->{status} == 200;
	note "wrk: GET /api/v1/test/$which->[1] ($r->{json}{samples} samples), 4 connections...";
	$res{"get_$which->[0]"} = wrk(conns => 4, threads => 1, path => "/api/v1/test/$which->[1]",
		headers => ["Authorization: Bearer $token"]);
}

# ---------------------------------------------------------------------------
# Bytes on disk per sample

note "measuring the size of usage...";
my ($usage_bytes, $usage_rows, $chunk_bytes, $recent_bytes, $chunks) = split /\|/, $s->psql(
	"SELECT pg_total_relation_size('usage_chunk') + pg_total_relation_size('usage_recent'), "
	. "(SELECT count(*) FROM usage), pg_total_relation_size('usage_chunk'), "
	. "pg_total_relation_size('usage_recent'), (SELECT count(*) FROM usage_chunk)");

# ---------------------------------------------------------------------------
# The client

my ($client_out, %cl) = ('');
if ($CLIENT_SECS > 0) {
	note "bench/client.sh: grasshopper -- sleep $CLIENT_SECS vs sleep $CLIENT_SECS...";
	local $ENV{BENCH_SECONDS} = $CLIENT_SECS;
	local $ENV{GRASSHOPPER_SERVER} = $s->url;
	local $ENV{GRASSHOPPER_JWT} = $token;
	open my $fh, '-|', "bash $srcdir/bench/client.sh $builddir/grasshopper 2>&1" or die $!;
	$client_out = do { local $/; <$fh> };
	close $fh;
	warn "bench/client.sh failed:\n$client_out" if $?;
	for my $k (['client', qr/^grasshopper -- sleep \S+\s+(\S+)\s+(\S+)\s+(\S+)%\s+(\d+)/m],
		   ['base', qr/^sleep \S+ \(baseline\)\s+(\S+)\s+(\S+)\s+(\S+)%\s+(\d+)/m],
		   ['own', qr/^grasshopper itself\s+(\S+)\s+(\S+)\s+(\S+)%\s+(\d+)/m]) {
		my @v = $client_out =~ $k->[1] or next;
		@{ $cl{$k->[0]} }{qw(wall cpu pct rss)} = @v;
	}
	@cl{qw(pss dirty)} = $client_out =~ /^halfway, what it costs the machine: PSS (\d+) KiB, private dirty (\d+) KiB$/m;
}

$s->stop(implicit => 1);

# ---------------------------------------------------------------------------
# The baseline query (SPEC 6.4): bench/baseline.pl, on a stack of its own

my ($baseline_out, @bq) = ('');
if ($ENV{BENCH_BASELINE_QUERY} // 1) {
	note 'bench/baseline.pl: the baseline query at 100 and 100 000 tests...';
	open my $fh, '-|', "perl $srcdir/bench/baseline.pl 2>&1" or die $!;
	$baseline_out = do { local $/; <$fh> };
	close $fh;
	$baseline_out =~ s/^(?:ok \d+|#).*\n//mg; # the stack's teardown checks
	# Its cases with the index, each plan: label, plan, ms at 100, at 100 000,
	# ratio (the section without the index follows an empty line).
	my ($with) = split /\n\n/, $baseline_out;
	@bq = map { [/^(.+?)\s+(generic|custom)\s+([\d.]+) ms\s+([\d.]+) ms\s+([\d.]+)/] }
		grep { / ms / } split /\n/, $with // '';
}

# ---------------------------------------------------------------------------
# The table

my $post = $res{post};
my $ratio = sub { my ($a, $b) = @_; defined $a && defined $b && $b > 0 ? sprintf('%.2f', $a / $b) : 'n/a' };
my $f0 = sub { defined $_[0] ? sprintf('%.0f', $_[0]) : 'n/a' };
my $f2 = sub { defined $_[0] ? sprintf('%.2f', $_[0]) : 'n/a' };
my @rows = (
	['usage POSTs/s, durable, nginx, ' . $CONNS . ' conns', $f0->($post->{rps}),
	 sprintf('pgbench INSERT -M prepared: %s tps (%d clients), %s (16); best %s (medians of the rounds; ratio: median of the rounds\' ratios)',
		$f0->($res{"pgbench_$INFLIGHT"}), $INFLIGHT, $f0->($res{pgbench_16}), $f0->($pg_best)),
	 defined $post_ratio ? sprintf('%.2f', $post_ratio) : 'n/a', '>= 0.75',
	 defined $post_ratio && $post_ratio >= 0.75 ? 'met' : 'NOT met'],
	($BASE_BIN ? ['the same, vs the tracker without the revocation check', $f0->($post->{rps}),
	 sprintf('baseline %s (BENCH_BASELINE), same pool, rounds alternating: %s POSTs/s, p99 %s ms',
		substr($BASE_COMMIT, 0, 12), $f0->(median(map { $_->{rps} } @{ $rounds{base} })),
		$f2->(median(map { $_->{p99} } @{ $rounds{base} }))),
	 defined $base_ratio ? sprintf('%.2f', $base_ratio) : 'n/a', '>= 0.90',
	 defined $base_ratio && $base_ratio >= 0.90 ? 'met' : 'NOT met'] : ()),
	($MEM ? ['the same, every sample with mem_usage', $f0->(median(map { $_->{rps} } @{ $rounds{mem} })),
	 sprintf('the POSTs without (version 1), rounds alternating; p99 %s ms',
		$f2->(median(map { $_->{p99} } @{ $rounds{mem} }))),
	 defined $mem_ratio ? sprintf('%.2f', $mem_ratio) : 'n/a', '>= 0.90',
	 defined $mem_ratio && $mem_ratio >= 0.90 ? 'met' : 'NOT met'] : ()),
	['the same', $f0->($post->{rps}), 'nginx return 204: ' . $f0->($res{ng204}{rps}) . ' req/s',
	 $ratio->($post->{rps}, $res{ng204}{rps}), 'report', ''],
	['the same', $f0->($post->{rps}),
	 'FastCGI floor, GET /api/v1/test/0 (404 after token check, no DB): ' . $f0->($res{floor}{rps}) . ' req/s',
	 $ratio->($post->{rps}, $res{floor}{rps}), 'report', ''],
	["p99 of usage POSTs, $CONNS conns", $f2->($post->{p99}) . ' ms',
	 'p50 ' . $f2->($post->{p50}) . ' ms', '', '< 20 ms',
	 defined $post->{p99} && $post->{p99} < 20 ? 'met' : 'NOT met'],
	["GET /test/:id p50, $BIG samples", $f2->($res{get_big}{p50}) . ' ms',
	 '10 samples: ' . $f2->($res{get_small}{p50}) . ' ms',
	 $ratio->($res{get_big}{p50}, $res{get_small}{p50}), '<= 1.2',
	 defined $res{get_big}{p50} && $res{get_small}{p50}
		&& $res{get_big}{p50} / $res{get_small}{p50} <= 1.2 ? 'met' : 'NOT met'],
	['bytes on disk per sample', sprintf('%.1f', $usage_bytes / ($usage_rows || 1)),
	 sprintf('%d bytes / %d samples, after VACUUM: usage_chunk %.1f per sample (%d rows); '
		 . 'usage_recent %d (a queue: what it held between vacuums, not per sample)',
		 $usage_bytes, $usage_rows, $chunk_bytes / ($usage_rows || 1), $chunks, $recent_bytes),
	 '', '<= 64', $usage_bytes / ($usage_rows || 1) <= 64 ? 'met' : 'NOT met'],
);
if ($cl{client}) {
	push @rows,
	 ["client CPU, sleep $CLIENT_SECS", "$cl{client}{cpu} s",
	  "sleep alone: $cl{base}{cpu} s; own " . sprintf('%.3f', $cl{own}{pct}) . '% of a core',
	  '', '< 0.2 %', $cl{own}{pct} < 0.2 ? 'met' : 'NOT met'],
	 ["client private dirty, sleep $CLIENT_SECS (halfway)", ($cl{dirty} // 'n/a') . ' KiB',
	  'from /proc/PID/smaps_rollup', '', '< 2 MiB',
	  defined $cl{dirty} && $cl{dirty} < 2048 ? 'met' : 'NOT met'],
	 ["client PSS, sleep $CLIENT_SECS (halfway)", ($cl{pss} // 'n/a') . ' KiB',
	  'shared library pages shared out among their users', '', '< 5 MiB',
	  defined $cl{pss} && $cl{pss} < 5120 ? 'met' : 'NOT met'],
	 ["client peak RSS, sleep $CLIENT_SECS", "$cl{client}{rss} KiB",
	  "sleep alone: $cl{base}{rss} KiB (mostly clean shared library pages)",
	  $ratio->($cl{client}{rss}, $cl{base}{rss}), 'report', ''];
}

if (@bq) {
	my ($worst) = sort { $b->[4] <=> $a->[4] } @bq;
	push @rows,
	 ["baseline query, $bq[0][0], $bq[0][1] plan, 100 000 tests", "$bq[0][3] ms",
	  "100 tests: $bq[0][2] ms; worst ratio of the " . @bq . " cases and plans: $worst->[0], $worst->[1]",
	  $worst->[4], '<= 1.2', $worst->[4] <= 1.2 ? 'met' : 'NOT met'];
}

my @h = ('what', 'result', 'reference, same run', 'ratio', 'target', '');
print "\n";
print '| ', join(' | ', @h), " |\n";
print '|', join('|', map { '---' } @h), "|\n";
print '| ', join(' | ', @$_), " |\n" for @rows;
print "\n";
printf "usage POSTs, %d rounds: %d requests, %d non-2xx, socket errors: %s; rows stored: %d\n",
	$ROUNDS, $post->{all_requests} // 0, $post->{non2xx}, $post->{errors} || 'none', $stored;
printf "each round (pgbench, then the POSTs): POSTs/s %s; pgbench best %s; ratio %s; p99 %s ms\n",
	join(' / ', map { $f0->($_->{rps}) } @{ $rounds{post} }),
	join(' / ', map { $f0->($_) } @round_best),
	join(' / ', map { $ratio->($rounds{post}[$_]{rps}, $round_best[$_]) } 0 .. $ROUNDS - 1),
	join(' / ', map { $f2->($_->{p99}) } @{ $rounds{post} });
printf "each round, this build / baseline %s: POSTs/s %s; ratio %s; non-2xx %s\n",
	substr($BASE_COMMIT, 0, 12),
	join(' / ', map { $f0->($rounds{post}[$_]{rps}) . ' vs ' . $f0->($rounds{base}[$_]{rps}) } 0 .. $ROUNDS - 1),
	join(' / ', map { $ratio->($rounds{post}[$_]{rps}, $rounds{base}[$_]{rps}) } 0 .. $ROUNDS - 1),
	join(' / ', map { $_->{non2xx} } @{ $rounds{base} })
	if $BASE_BIN;
printf "each round, with mem_usage / without: POSTs/s %s; ratio %s; non-2xx %s\n",
	join(' / ', map { $f0->($rounds{mem}[$_]{rps}) . ' vs ' . $f0->($rounds{post}[$_]{rps}) } 0 .. $ROUNDS - 1),
	join(' / ', map { $ratio->($rounds{mem}[$_]{rps}, $rounds{post}[$_]{rps}) } 0 .. $ROUNDS - 1),
	join(' / ', map { $_->{non2xx} } @{ $rounds{mem} })
	if $MEM;
printf "nginx 204: %d non-2xx; floor: %d requests (all 404 by design)\n",
	$res{ng204}{non2xx}, $res{floor}{requests} // 0;
printf "loading %d samples in usage_add calls of 1000 took %.1f s\n", $BIG, $load_secs;
print "\npg_stat_statements during the last POST run (calls | mean ms | total ms | query):\n$stmts\n";
printf "pg_stat_wal during the last POST run: %d records, %d writes, %d syncs taking %.0f ms "
	. "(%.3f ms each); %d commits in the database, %.2f commits per WAL sync\n",
	$wal_records, $wal_writes, $wal_syncs, $wal_sync_ms, $wal_sync_ms / ($wal_syncs || 1),
	$commits, $commits / ($wal_syncs || 1);
if ($post->{requests}) {
	my $n = $post->{requests};
	printf "group commit: %d usage POSTs in %d commits, %.1f requests per commit "
		. "(one WAL flush, %.3f ms, serves them all)\n",
		$n, $commits, $n / ($commits || 1), $wal_sync_ms / ($wal_syncs || 1);
	my $total = 0;
	$total += $_ for values %cpu;
	printf "where the time goes: %.3f ms of CPU per usage POST in all (%d cores: at most "
		. "%.0f POSTs/s if nothing else ran): %s; usage_add executes in %.3f ms "
		. "(pg_stat_statements mean)\n",
		1000 * $total / $n, $NCPU, $n * $NCPU / ($total || 1),
		join(', ', map { sprintf '%s %.3f', $_, 1000 * $cpu{$_} / $n }
			grep { $cpu{$_} / $total >= 0.02 } sort { $cpu{$b} <=> $cpu{$a} } keys %cpu),
		$ua_mean // -1;
}
{
	my $pg_best_c = $res{pgbench_16} >= ($res{"pgbench_$INFLIGHT"} // 0) ? 16 : $INFLIGHT;
	my $pcpu = $res{"pgbench_cpu_$pg_best_c"};
	my $ucpu = $busy_post / ($post->{requests} || 1);
	printf "machine-wide CPU per operation: usage POST %.3f ms, pgbench INSERT (%d clients) "
		. "%.3f ms: a POST costs %.1fx an INSERT, so at equal CPU its ceiling is %.2f of "
		. "pgbench's\n", 1000 * $ucpu, $pg_best_c, 1000 * ($pcpu // 0),
		$ucpu / ($pcpu || 1), ($pcpu // 0) / ($ucpu || 1);
}
printf "CPU during the last POST run (%.1f s wall, %d cores): %s\n", $tpost, $NCPU,
	join(', ', map { sprintf '%s %.1f s', $_, $cpu{$_} }
		grep { $cpu{$_} >= 0.05 } sort { $cpu{$b} <=> $cpu{$a} } keys %cpu);
print "\nbench/client.sh:\n$client_out" if $client_out;
print "\nbench/baseline.pl:\n$baseline_out" if $baseline_out;
printf "\nsettings: BENCH_SECONDS=%s BENCH_CONNECTIONS=%s BENCH_WORKERS=%s BENCH_THREADS=%s "
	. "BENCH_DB_CONNECTIONS=%s BENCH_SAMPLES=%s BENCH_CLIENT_SECONDS=%s BENCH_ROUNDS=%s "
	. "BENCH_BASELINE=%s BENCH_BASELINE_QUERY=%s; wrk -t%d; %d cores; make bench took %.0f s\n",
	$SECS, $CONNS, $WORKERS, $TTHREADS, $DBCONNS, $BIG, $CLIENT_SECS, $ROUNDS,
	$BASE_COMMIT // 'none', $ENV{BENCH_BASELINE_QUERY} // 1, $THREADS, $NCPU, time - $T0;
