package GH::Bench;
# What the statement benchmarks (bench/tags-filter.pl, bench/baseline.pl)
# share: one of the tracker's statements, prepared on a connection of the
# stack's PostgreSQL as a worker prepares it, run with the plan a worker's
# connection may settle on, timed by EXPLAIN ANALYZE.
#
#   my ($ms, $plan, $pages) = GH::Bench::explain($s, $sql, $args, %opt);
#
# $sql: the statement ($1, $2, ... its parameters); $args: the EXECUTE's
# arguments as SQL text ("42, NULL, 'n3'"). Options:
#   plan    'force_generic_plan' (default) or 'force_custom_plan'
#           (plan_cache_mode)
#   runs    sessions, each its own connection (default 15)
#   repeat  EXPLAIN ANALYZEs in each session (default 1), of which the
#           session's median counts: a query of a fraction of a millisecond
#           is timed many times on one warm connection, less at the mercy
#           of a shared machine's scheduling
#   before  SQL run first in each session (e.g. "BEGIN; DROP INDEX x;":
#           the session ends without a COMMIT, so that rolls back)
# Returns the median over the sessions in ms, the indexes (or sequential
# scans) the plan reads, in its order, joined by ", ", and the pages it
# read (from shared buffers or not) in the first session.
use strict;
use warnings;

# median(@numbers): the middle one (of an even count, the lower middle).
sub median {
	my @v = sort { $a <=> $b } @_;
	return $v[$#v / 2];
}

# The indexes and sequential scans a text EXPLAIN shows, in its order.
sub plan_scans {
	return join ', ',
		$_[0] =~ /(Index (?:Only )?Scan(?: Backward)? using \w+|Bitmap Index Scan on \w+|Seq Scan on \w+)/g;
}

sub explain {
	my ($s, $sql, $args, %o) = @_;
	my $mode = $o{plan} || 'force_generic_plan';
	my $repeat = $o{repeat} || 1;
	# A worker's connection lives long: warm its caches (catalog,
	# plpgsql's compiled function) with a few runs first.
	my $prep = ($o{before} // '') . " SET plan_cache_mode = $mode; PREPARE q AS $sql; "
		. "EXECUTE q($args); EXECUTE q($args); EXECUTE q($args);";
	my $explain = "EXPLAIN (ANALYZE, BUFFERS) EXECUTE q($args)";
	my $first = $s->psql("$prep $explain");
	my $plan = plan_scans($first);
	# The whole statement's pages: the first Buffers line, its top node's.
	my ($hit, $read) = $first =~ /Buffers: shared(?: hit=(\d+))?(?: read=(\d+))?/;
	my $pages = ($hit // 0) + ($read // 0);
	my @ms;
	for (1 .. $o{runs} || 15) {
		if ($repeat == 1) {
			push @ms, $1 if $s->psql("$prep $explain") =~ /Execution Time: ([\d.]+) ms/;
			next;
		}
		# psql prints every statement's result: the median is the last line.
		push @ms, (split /\n/, $s->psql("$prep CREATE FUNCTION pg_temp.gh_bench_times() RETURNS SETOF float8 "
			. "LANGUAGE plpgsql AS \$gh\$ DECLARE j json; BEGIN FOR i IN 1 .. $repeat LOOP "
			. "EXECUTE \$q\$EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE q($args)\$q\$ INTO j; "
			. "RETURN NEXT (j -> 0 ->> 'Execution Time')::float8; END LOOP; END \$gh\$; "
			. "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY t) FROM pg_temp.gh_bench_times() t"))[-1];
	}
	return (median(@ms), $plan, $pages);
}

1;
