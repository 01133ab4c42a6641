#!/usr/bin/perl
# bench/baseline.pl: GET /test/:id/baseline (SPEC 6.4) at 100 tests of one
# user and at BENCH_TESTS (default 100 000) of another, in one database
# with tests of three more users, of the same names and branches, in
# between. The query is the tracker's own statement
# (fcgi/statements.c), prepared and run with the generic plan a worker's
# connection may settle on (and with a custom plan), BENCH_REPEAT (default
# 50) times on each of BENCH_RUNS (default 9) connections, the two sizes
# in turn (bench/lib/GH/Bench.pm); prints the median EXPLAIN ANALYZE
# execution time at each size, their ratio (target <= 1.2: flat in the
# number of tests), the indexes the plan reads, and the same without the
# index tests_baseline (schema/010) for comparison. Exits 1 when a ratio
# misses its target or the plan does not read tests_baseline.
# BENCH_CASE=branch, none or rare runs only that case.
#
#   GH_SRCDIR=. GH_BUILDDIR=build perl bench/baseline.pl
use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);

my $srcdir;
BEGIN {
	$srcdir = $ENV{GH_SRCDIR} || abs_path(dirname(__FILE__) . '/..');
	$ENV{GH_SRCDIR} = $srcdir;
}
use lib "$srcdir/t/lib", "$srcdir/bench/lib";
use GH::Bench;
use GH::Stack;

$| = 1;
my $N = $ENV{BENCH_TESTS} || 100_000;
my $SMALL = 100;
my $RUNS = $ENV{BENCH_RUNS} || 9;
my $REPEAT = $ENV{BENCH_REPEAT} || 50;
my $TARGET = 1.2;

my $s = GH::Stack->new->start;
my ($big, $small) = map { $s->user->id } 1 .. 2;
my @others = map { $s->user->id } 1 .. 3;

# fill($uid, $rows, $mine, $name, $branch): $rows tests (g: 1 to $rows),
# those where the SQL condition $mine holds of $uid, the others of the
# other users in turn, of name and branch tag the SQL expressions of g
# $name and $branch (NULL: no branch tag); one in fifty still active;
# every figure, from a hash of g (h), none missing: the medians are the
# same work at either size, whichever rows a case reads (t/api-baseline.t
# checks the missing ones).
sub fill {
	my ($uid, $rows, $mine, $name, $branch) = @_;
	my $other = join ',', @others;
	$s->psql(qq{INSERT INTO tests (user_id, name, description, threshold, start_time, end_time,
		tags, samples, cpu_sum, cpu_max, above_us, mem_samples, mem_sum, mem_max,
		user_cpu, system_cpu, max_rss, exit_status)
	SELECT CASE WHEN $mine THEN $uid ELSE (ARRAY[$other])[1 + g % 3] END,
		$name, '', 0.5, st,
		CASE WHEN g % 50 = 7 THEN NULL ELSE st + (10 + g % 17) * interval '1 s' END,
		jsonb_strip_nulls(jsonb_build_object('ci', 'github', 'branch', $branch)),
		1 + h % 13, (1 + h % 13) * 0.5, (h % 100) / 100.0, (h % 9) * 1000000, 1 + h % 5,
		(1 + h % 5) * 0.4, 0.4 + (h % 7) / 100.0, (h % 11) * 0.5, (h % 3) * 0.25, 1000 + h % 1000,
		h % 2
	FROM generate_series(1, $rows) g,
		LATERAL (SELECT now() - ($rows - g) * interval '1 min' AS st,
			abs(hashint4(g)::bigint) AS h) t});
}

# asked($uid, $name, $branch): a new active test of $uid, whose baseline is
# asked for; its id.
sub asked {
	my ($uid, $name, $branch) = @_;
	my $tags = defined $branch ? qq{{"ci": "github", "branch": "$branch"}} : '{"ci": "github"}';
	return $s->psql(qq{INSERT INTO tests (user_id, name, description, threshold, start_time, tags)
		VALUES ($uid, '$name', '', 0.5, now(), '$tags') RETURNING id});
}

# The big user: five tests in six (the others' the sixth), of ten names,
# branch b0-b4 (a seventh without a branch tag), and a branch "rare" of
# name n3 only among the first 500 (its runs are far back). The small one:
# one test in fifty, so that its runs lie as far apart in the table as the
# big one's of a name and branch, every one of name n3, the first 30 of
# branch "rare", then a fourth without a branch tag and the rest b2:
# enough of each that both answer the same number of runs in every case.
fill($big, $N * 6 / 5, 'g % 6 <> 0', q{'n' || (g % 10)}, q{CASE WHEN g % 7 = 0 THEN NULL
	WHEN g % 10 = 3 AND g < 500 AND g % 4 = 1 THEN 'rare' ELSE 'b' || (g / 10 % 5) END});
fill($small, $SMALL * 50, 'g % 50 = 0', q{'n3'},
	q{CASE WHEN g <= 30 * 50 THEN 'rare' WHEN g / 50 % 4 = 0 THEN NULL ELSE 'b2' END});
my %ask = map {
	my $uid = $_;
	($uid => {branch => asked($uid, 'n3', 'b2'), none => asked($uid, 'n3', undef),
		rare => asked($uid, 'n3', 'rare')});
} $big, $small;
$s->psql('VACUUM ANALYZE tests');
my $total = $s->psql('SELECT count(*) FROM tests');

# The tracker's statement (fcgi/statements.c: STMT_TEST_BASELINE).
my $sql = q{SELECT runs, duration, time_above_threshold, max_cpu_usage, mean_cpu_usage,
	max_mem_usage, user_cpu, system_cpu, max_rss FROM test_baseline($1::bigint, $2::bigint, $3::int)};
my @cases = grep { !$ENV{BENCH_CASE} || $_->[1] eq $ENV{BENCH_CASE} } (
	['n3, branch b2, runs=10' => branch => 10],
	['n3, branch b2, runs=50' => branch => 50],
	['n3, no branch tag, runs=10' => none => 10],
	['n3, branch "rare", far back, runs=10' => rare => 10],
);

# measure($which, $runs, %opt) → {$uid => {ms, plan, pages}} for both
# users, the sessions of the two in turn, which first alternating (one at
# a time: the machine's weather then falls on both alike).
sub measure {
	my ($which, $runs, %o) = @_;
	my (%ms, %r);
	for my $i (1 .. $RUNS) {
		for my $uid ($i % 2 ? ($small, $big) : ($big, $small)) {
			my ($ms, $plan, $pages) = GH::Bench::explain($s, $sql,
				"$uid, $ask{$uid}{$which}, $runs", %o, runs => 1, repeat => $REPEAT);
			push @{ $ms{$uid} }, $ms;
			@{ $r{$uid} }{qw(plan pages)} = ($plan, $pages);
		}
	}
	$r{$_}{ms} = GH::Bench::median(@{ $ms{$_} }) for keys %ms;
	return \%r;
}

printf "%d tests of one user, %d of another, %d in all (vacuumed, analyzed); median of %d connections x %d runs\n",
	$N, $SMALL, $total, $RUNS, $REPEAT;
printf "%-36s %-7s %10s %10s %6s %9s  %s\n", 'baseline of', 'plan', "$SMALL tests", "$N", 'ratio', 'pages',
	'indexes';
my $failed = 0;
for my $c (@cases) {
	my ($label, $which, $runs) = @$c;
	for my $plan (qw(force_generic_plan force_custom_plan)) {
		my $r = measure($which, $runs, plan => $plan);
		my $ratio = $r->{$big}{ms} / ($r->{$small}{ms} || 1e-9);
		my $ok = $ratio <= $TARGET && $r->{$big}{plan} =~ /tests_baseline/;
		$failed++ unless $ok;
		(my $p = $plan) =~ s/^force_|_plan$//g;
		printf "%-36s %-7s %7.3f ms %7.3f ms %6.2f %9s  %s%s\n", $label, $p, $r->{$small}{ms},
			$r->{$big}{ms}, $ratio, "$r->{$small}{pages}/$r->{$big}{pages}", $r->{$big}{plan},
			$ok ? '' : "  NOT met (<= $TARGET, tests_baseline)";
	}
}

# For comparison: the same without tests_baseline (dropped in a transaction
# that rolls back), as the indexes before schema 10 would answer it.
print "\nwithout tests_baseline (before schema 10):\n";
for my $c (@cases) {
	my ($label, $which, $runs) = @$c;
	my $r = measure($which, $runs, before => 'BEGIN; DROP INDEX tests_baseline;');
	printf "%-36s %-7s %7.3f ms %7.3f ms %6.2f %9s  %s\n", $label, 'generic', $r->{$small}{ms},
		$r->{$big}{ms}, $r->{$big}{ms} / ($r->{$small}{ms} || 1e-9), "$r->{$small}{pages}/$r->{$big}{pages}",
		$r->{$big}{plan};
}
$s->stop;
print $failed ? "\nbench/baseline.pl: $failed case(s) NOT met\n" : "\nbench/baseline.pl: every case met\n";
exit($failed ? 1 : 0);
