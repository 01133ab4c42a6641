#!/usr/bin/perl
# bench/schema-ab.pl: the usage path on two schemas in one run, alternating.
# Database "after" is made by this build's init-db (schema/); "before" from
# the migrations in BENCH_SCHEMA_BEFORE (default t/schema-6, the schema as
# released before schema 7), as that release's init-db made it. In each
# round the same wrk POST run as `make bench`'s (bench/usage-post.lua, 64
# connections, durable commits) runs against the pool pointed at each
# database in turn, "before" first in odd rounds and last in even ones; a
# third database, "nofk", is "after" without usage_recent's foreign key.
# Prints each round and the medians, and bytes per sample of each. Then,
# the pool stopped, the CPU one usage_add call costs PostgreSQL in each
# database, alternating likewise: BENCH_CALLS (default 20000) calls of one
# sample each, in order, 16 to a transaction as group commit makes them,
# timed by the backend's own CPU time (/proc/PID/stat), which the other
# work on a shared machine disturbs far less than the wall clock. The
# pool serving "before" runs BENCH_BEFORE_BIN, a tracker of that release
# (this one prepares statements its schema lacks); the usage path of the
# two trackers is the same code.
#
#   GH_SRCDIR=. GH_BUILDDIR=build BENCH_BEFORE_BIN=/path/grasshopper-tracker \
#       perl bench/schema-ab.pl
#   (BENCH_SECONDS, default 10; BENCH_ROUNDS, default 3)
use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use Time::HiRes qw(time);

my $srcdir;
BEGIN {
	$srcdir = $ENV{GH_SRCDIR} || abs_path(dirname(__FILE__) . '/..');
	$ENV{GH_SRCDIR} = $srcdir;
}
use lib "$srcdir/t/lib";
use GH::Stack qw(now_us);

$| = 1;
my $SECS = $ENV{BENCH_SECONDS} || 10;
my $ROUNDS = $ENV{BENCH_ROUNDS} || 3;
my $BEFORE = $ENV{BENCH_SCHEMA_BEFORE} || "$srcdir/t/schema-6";
my $CONNS = 64;
my $THREADS = 2;
my $BEFORE_BIN = $ENV{BENCH_BEFORE_BIN} or die "bench/schema-ab.pl: set BENCH_BEFORE_BIN\n";

my $s = GH::Stack->new(quiet => 1, wrapper => undef, env => {TRACKER_USER_RATE => 0})->start;
$s->psql($_) for "ALTER SYSTEM SET fsync = on", "ALTER SYSTEM SET synchronous_commit = on",
	"ALTER SYSTEM SET full_page_writes = on";
$s->stop_tracker;
$s->stop_postgres or die "pg_ctl stop failed\n";
$s->start_postgres;
die "not durable\n" unless $s->psql('SHOW fsync') eq 'on';

sub url {
	my ($db, $role) = @_;
	(my $u = $s->database_url) =~ s/dbname=\S+/dbname=$db/;
	$u =~ s/user=\S+/user=$role/ if $role;
	return $u;
}
my %arm;
my $THIS_BIN = $s->tracker_bin;
sub start_for {
	my ($db) = @_;
	$s->tracker_bin($db eq 'before' ? $BEFORE_BIN : $THIS_BIN);
	$s->start_tracker(TRACKER_DATABASE_URL => url($db, $s->service_role));
	$s->wait_healthy or die "$db: not healthy\n";
}
for my $db (qw(before after nofk)) {
	$s->psql("CREATE DATABASE $db", db => 'postgres');
	if ($db eq 'before') {
		$s->psql('CREATE TABLE schema_migrations (version int PRIMARY KEY, name text NOT NULL, '
			. 'applied_at timestamptz NOT NULL DEFAULT now())', db => $db);
		for my $f (sort glob "$BEFORE/[0-9][0-9][0-9]_*.sql") {
			open my $fh, '<', $f or die "$f: $!";
			my $sql = do { local $/; <$fh> };
			my ($v) = $f =~ m{/(\d{3})_[^/]*$};
			$s->psql("$sql;\nINSERT INTO schema_migrations (version, name) VALUES ($v, 'x')", db => $db);
		}
		$s->psql("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "
			. $s->service_role . "; GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "
			. $s->service_role, db => $db);
	} else {
		$s->tracker_bin($THIS_BIN);
		$s->init_db(TRACKER_DATABASE_URL => url($db)) == 0 or die "init-db $db failed\n";
		$s->psql('ALTER TABLE usage_recent DROP CONSTRAINT usage_recent_test_id_fkey', db => $db)
			if $db eq 'nofk';
	}
	start_for($db);
	my $u = $s->user;
	my @tests = map { $u->api(POST => 'test', {name => "bench-$_"})->{json}{id} } 1 .. $CONNS;
	$arm{$db} = {token => $u->token, tests => join(',', @tests)};
	$s->stop_tracker;
}

sub post_run {
	my ($db) = @_;
	start_for($db);
	local %ENV = (%ENV, BENCH_TOKEN => $arm{$db}{token}, BENCH_TESTS => $arm{$db}{tests},
		BENCH_BASE_US => now_us(), BENCH_THREADS => $THREADS);
	my $out = `wrk -t $THREADS -c $CONNS -d ${SECS}s --latency --timeout 10s -s $srcdir/bench/usage-post.lua ${\ $s->url}/`;
	$s->stop_tracker;
	my ($rps) = $out =~ /Requests\/sec:\s+([\d.]+)/;
	my ($p99, $unit) = $out =~ /^\s+99%\s+([\d.]+)(us|ms|s)\b/m;
	my $non2xx = $out =~ /Non-2xx or 3xx responses:\s+(\d+)/ ? $1 : 0;
	die "$db: $non2xx non-2xx\n$out" if $non2xx;
	return ($rps, $p99 * {us => 0.001, ms => 1, s => 1000}->{$unit});
}

my %r;
my @order = qw(before after nofk);
for my $round (1 .. $ROUNDS) {
	my @o = $round % 2 ? @order : reverse @order;
	my @line;
	for my $db (@o) {
		my ($rps, $p99) = post_run($db);
		push @{ $r{$db} }, $rps;
		push @{ $r{"$db-p99"} }, $p99;
		push @line, sprintf '%s %.0f/s p99 %.1f ms', $db, $rps, $p99;
	}
	printf "round %d: %s; after/before %.3f, after/nofk %.3f\n", $round, join(', ', @line),
		$r{after}[-1] / $r{before}[-1], $r{after}[-1] / $r{nofk}[-1];
}
sub median { my @v = sort { $a <=> $b } @_; @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2 }
my @ratio = map { $r{after}[$_] / $r{before}[$_] } 0 .. $ROUNDS - 1;
my @fk = map { $r{after}[$_] / $r{nofk}[$_] } 0 .. $ROUNDS - 1;
printf "medians: before %.0f/s, after %.0f/s, nofk %.0f/s; p99 before %.1f, after %.1f, nofk %.1f ms\n",
	median(@{ $r{before} }), median(@{ $r{after} }), median(@{ $r{nofk} }),
	median(@{ $r{'before-p99'} }), median(@{ $r{'after-p99'} }), median(@{ $r{'nofk-p99'} });
printf "after/before: median of the rounds' ratios %.3f (%s)\n", median(@ratio), join(' / ', map { sprintf '%.3f', $_ } @ratio);
printf "after/nofk (the foreign key's cost): %.3f (%s)\n", median(@fk), join(' / ', map { sprintf '%.3f', $_ } @fk);
# cpu_per_call($db, $round) → microseconds of the backend's CPU per
# usage_add call.
my $CALLS = $ENV{BENCH_CALLS} || 20000;
sub cpu_per_call {
	my ($db, $round) = @_;
	my ($host) = $s->database_url =~ /host=(\S+)/;
	my $file = $s->dir . '/cpu.sql';
	open my $fh, '>', $file or die "$file: $!";
	print $fh <<"SQL";
SELECT pg_backend_pid() AS pid \\gset
\\setenv BENCH_PID :pid
\\! awk '{print \$14 + \$15}' /proc/\$BENCH_PID/stat
DO \$\$
DECLARE
	i int;
	u bigint := (SELECT min(user_id) FROM tests);
	ids bigint[] := (SELECT array_agg(id) FROM tests WHERE user_id = u);
	b timestamptz := (SELECT max(last_ts) FROM tests) + interval '1 s';
BEGIN
	FOR i IN 1 .. $CALLS LOOP
		PERFORM usage_add(u, ids[1 + i % cardinality(ids)],
				  ARRAY[b + i * interval '1 ms'], ARRAY[0.7::float8]);
		IF i % 16 = 0 THEN COMMIT; END IF;
	END LOOP;
END \$\$;
\\! awk '{print \$14 + \$15}' /proc/\$BENCH_PID/stat
SQL
	close $fh;
	my @ticks = split ' ', `/usr/lib/postgresql/15/bin/psql -X -q -At -h $host -p 5432 -U postgres -d $db -f $file`;
	die "$db: no CPU times from psql\n" unless @ticks == 2;
	my $hz = `getconf CLK_TCK` || 100;
	return ($ticks[1] - $ticks[0]) / $hz / $CALLS * 1e6;
}
my %cpu;
for my $round (1 .. 2 * $ROUNDS) {
	my @o = $round % 2 ? @order : reverse @order;
	$cpu{$_}[$round - 1] = cpu_per_call($_, $round) for @o;
	printf "usage_add CPU, round %d: %s\n", $round, join ', ', map { sprintf '%s %.1f us', $_, $cpu{$_}[-1] } @order;
}
printf "usage_add CPU per call, medians of %d rounds: %s; after/before %.3f, after/nofk %.3f\n", 2 * $ROUNDS,
	join(', ', map { sprintf '%s %.1f us', $_, median(@{ $cpu{$_} }) } @order),
	median(@{ $cpu{after} }) / median(@{ $cpu{before} }), median(@{ $cpu{after} }) / median(@{ $cpu{nofk} });

for my $db (@order) {
	$s->psql('VACUUM (ANALYZE) usage_recent, usage_chunk', db => $db);
	print "$db: ", $s->psql(q{SELECT round((pg_total_relation_size('usage_chunk') + pg_total_relation_size('usage_recent'))::numeric
		/ count(*), 1) || ' bytes per sample (' || count(*) || ' samples); chunks alone '
		|| round(pg_total_relation_size('usage_chunk')::numeric / count(*), 1) FROM usage}, db => $db), "\n";
}
$s->stop;
