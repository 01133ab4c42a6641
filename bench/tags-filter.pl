#!/usr/bin/perl
# bench/tags-filter.pl: GET /test filtered by name and tags against the plain
# list, at BENCH_TESTS (default 100 000) tests of one user (and a fifth as
# many of others). Each query is the tracker's own statement
# (fcgi/statements.c), prepared and run with the plan BENCH_PLAN asks for
# (default force_generic_plan, the one a worker's connection may settle
# on; or force_custom_plan), BENCH_RUNS (default 15) times; prints the
# median EXPLAIN ANALYZE execution time and the plan's indexes of each
# (bench/lib/GH/Bench.pm).
#
#   GH_SRCDIR=. GH_BUILDDIR=build perl bench/tags-filter.pl
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
my $RUNS = $ENV{BENCH_RUNS} || 15;
my $MODE = $ENV{BENCH_PLAN} || 'force_generic_plan';

my $s = GH::Stack->new->start;
my $u = $s->user;
$s->user for 1 .. 4;
my $uid = $u->id;

# Ten names; branch one of 5, os one of 2, host one of 20, each independent
# of the name; one test in the whole lot has commit=needle. The others'
# tests are interleaved with the user's, every sixth.
$s->psql(qq{INSERT INTO tests (user_id, name, description, threshold, start_time, end_time, tags)
	SELECT CASE WHEN g % 6 = 0 THEN (SELECT id FROM users WHERE id <> $uid ORDER BY id
		LIMIT 1 OFFSET (g / 6 % 4)) ELSE $uid END,
	'n' || (g % 10), '', 0.5, now(), now(),
	jsonb_build_object('branch', 'b' || (g / 10 % 5), 'os', CASE WHEN g / 50 % 2 = 0
	THEN 'linux' ELSE 'mac' END, 'host', 'h' || (g / 7 % 20), 'ci', 'github')
	|| CASE WHEN g = 60001 THEN '{"commit": "needle"}' ELSE '{}' END::jsonb
	FROM generate_series(1, $N * 6 / 5) g});
$s->psql('VACUUM ANALYZE tests');

# The statements of fcgi/statements.c (the filtered list: the function
# test_list_filtered, whose EXECUTE plans with the values; shown as a
# Function Scan; its query's plan is the one "prepared" gets under
# force_custom_plan), and for comparison the same query as a prepared
# statement of its own (prepared), whose generic plan a worker's connection
# may settle on.
my $cols = q{id, name, description, threshold, ts_us(start_time), ts_us(end_time), samples,
	cpu_sum, cpu_max, above_us, user_cpu, system_cpu, max_rss, tags};
my $page = q{id < coalesce($2::bigint, 9223372036854775807) ORDER BY id DESC LIMIT $3::int + 1};
my %sql = (
	plain => qq{SELECT $cols FROM tests WHERE user_id = \$1::bigint AND (\$2::bigint IS NULL
		OR id < \$2::bigint) ORDER BY id DESC LIMIT \$3::int + 1},
	filtered => qq{SELECT $cols FROM test_list_filtered(\$1::bigint, \$2::bigint, \$3::int,
		\$4::text, \$5::jsonb) ORDER BY id DESC},
	prepared => qq{SELECT $cols FROM tests WHERE user_id = \$1::bigint
		AND (\$4::text IS NULL OR name = \$4::text) AND (\$5::jsonb IS NULL OR tags @> \$5::jsonb)
		AND $page},
);
my $deep = int($N * 3 / 5);
my @cases = (
	['plain list' => plain => "$uid, NULL, 50"],
	['plain list, deep page' => plain => "$uid, $deep, 50"],
);
for my $st (qw(filtered prepared)) {
	push @cases,
		["name=n3 ($st)" => $st => "$uid, NULL, 50, 'n3', NULL"],
		["name=n3, deep page ($st)" => $st => "$uid, $deep, 50, 'n3', NULL"],
		["name=n3 branch:b2 ($st)" => $st => qq{$uid, NULL, 50, 'n3', '{"branch":"b2"}'}],
		["name=n3 branch:b3 os:linux ($st)" => $st =>
			qq{$uid, NULL, 50, 'n3', '{"branch":"b3","os":"linux"}'}],
		["name=n3 branch:b3, deep page ($st)" => $st => qq{$uid, $deep, 50, 'n3', '{"branch":"b3"}'}],
		["name=n1 commit:needle, 1 test ($st)" => $st => qq{$uid, NULL, 50, 'n1', '{"commit":"needle"}'}],
		["host:h7 ($st)" => $st => qq{$uid, NULL, 50, NULL, '{"host":"h7"}'}],
		["ci:github, every test ($st)" => $st => qq{$uid, NULL, 50, NULL, '{"ci":"github"}'}],
		["commit:needle, 1 test ($st)" => $st => qq{$uid, NULL, 50, NULL, '{"commit":"needle"}'}],
		["branch:b1 os:nope, none ($st)" => $st => qq{$uid, NULL, 50, NULL, '{"branch":"b1","os":"nope"}'}];
}

printf "%d tests of one user, %d of others; median of %d runs, %s\n", $N, $N / 5, $RUNS, $MODE;
for my $c (@cases) {
	my ($label, $stmt, $args) = @$c;
	my ($ms, $plan) = GH::Bench::explain($s, $sql{$stmt}, $args, plan => $MODE, runs => $RUNS);
	printf "%-44s %8.3f ms  %s\n", $label, $ms, $plan;
}
$s->stop;
