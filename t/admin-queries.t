# docs/admin.md, tested: every ```sql block of it runs, as written, against a
# real database filled through the API, and the answers are what the data
# says. A block under a heading this test does not know still has to run.
use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use List::Util qw(sum);
use Test::More;
use GH::Stack qw(ts parse_ts now_us json_decode);

my $src = $ENV{GH_SRCDIR} || abs_path(dirname(__FILE__) . '/..');
my $doc = "$src/docs/admin.md";

# ---- the blocks of docs/admin.md --------------------------------------------

# (heading => [sql...]) in order, and the psql heredoc of the repair recipe.
my (@blocks, $repair);
{
	open my $fh, '<:encoding(UTF-8)', $doc or BAIL_OUT("$doc: $!");
	my ($heading, $lang, $text) = ('');
	while (my $line = <$fh>) {
		if (defined $lang) {
			if ($line =~ /^```\s*$/) {
				push @blocks, {heading => $heading, sql => $text} if $lang eq 'sql';
				$repair = $1 if $lang eq 'sh' && $text =~ /<<'EOF'\n(.*?)^EOF$/ms;
				undef $lang;
			} else {
				$text .= $line;
			}
		} elsif ($line =~ /^```(\w*)/) {
			($lang, $text) = ($1, '');
		} elsif ($line =~ /^#+\s+(.*?)\s*$/) {
			$heading = $1;
		}
	}
}
ok(@blocks >= 10, 'docs/admin.md has its sql blocks (' . scalar(@blocks) . ')');
ok($repair && $repair =~ /UPDATE tests/, 'docs/admin.md has the repair recipe');

# ---- data, through the API ---------------------------------------------------

my $s = GH::Stack->new->start;
my $now = now_us();
my $S = 1_000_000;
my $DAY = 86400 * $S;

my %user = map { $_ => $s->user(username => $_) } qw(alice bob carol);
my %per_day;    # UTC day => samples sent

# run($who, %test): create a test, send samples [offset_s, cpu] (in the
# order given), stop it at end_s unless undef; returns the test's id.
sub run {
	my ($who, %t) = @_;
	my $u = $user{$who};
	my $r = $u->api(POST => 'test', {name => $t{name}, threshold => 0.5,
		start_time => ts($t{start})});
	is($r->{status}, 201, "create $t{name}") or diag $r->{content};
	my $id = $r->{json}{id};
	# [seconds, cpu_usage, mem_usage (none when undef)]
	my @batch = map { {timestamp => ts($t{start} + $_->[0] * $S), cpu_usage => $_->[1],
		defined $_->[2] ? (mem_usage => $_->[2]) : ()} } @{ $t{samples} };
	$per_day{ substr $_->{timestamp}, 0, 10 }++ for @batch;
	$r = $u->api(POST => "test/$id/usage", \@batch);
	is($r->{status}, 200, "samples of $t{name}") or diag $r->{content};
	if (defined $t{end_s}) {
		$r = $u->api(POST => "test/$id/stop", {end_time => ts($t{start} + $t{end_s} * $S)});
		is($r->{status}, 200, "stop $t{name}") or diag $r->{content};
	}
	return $id;
}

# Above 0.5 for 2 s of 4 (50 %: not "most of the time"); samples sent out
# of order, two days ago.
my $half = run(alice => name => 'half', start => $now - 2 * $DAY,
	samples => [[3, 0.8, 0.4], [1, 0.9], [4, 0.1, 0.6], [2, 0.2, 0.5]], end_s => 4);
# Above for all of its 10 s.
my $busy = run(alice => name => 'busy', start => $now - 600 * $S,
	samples => [map { [$_, 0.95] } 1 .. 10], end_s => 10);
# The longest: two hours, never above.
my $long = run(alice => name => 'long', start => $now - 3 * 3600 * $S,
	samples => [[3600, 0.1], [7200, 0.3]], end_s => 7200);
# Still running, low.
my $active = run(bob => name => 'active', start => $now - 5 * $S,
	samples => [[1, 0.2], [2, 0.2], [3, 0.2]]);
# Left active since yesterday: a grasshopper that was killed.
my $abandoned = run(bob => name => 'abandoned', start => $now - 2 * $DAY + 3600 * $S,
	samples => [[1, 0.6], [2, 0.7]]);
my $total_samples = 4 + 10 + 2 + 3 + 2;

# ---- every block runs as written, and says what the data says -----------------

# rows($sql): the query's rows as hashes, in its order.
sub rows {
	my $sql = shift;
	(my $q = $sql) =~ s/;\s*\z//;
	return json_decode($s->psql("SELECT coalesce(json_agg(q), '[]') FROM ($q) q"));
}
sub ids { [map { $_->{id} } @{ $_[0] }] }

my %checks = (
	'Connecting' => sub {
		my $r = shift;
		my %v = map { $_->{version} => 1 } @$r;
		ok($v{1} && $v{2}, 'schema_migrations lists migrations 1 and 2');
	},
	'`test_summary`: one row per test run' => sub {
		my $r = shift;
		is_deeply(ids($r), [$abandoned, $active, $long, $busy, $half],
			'latest runs: every test, newest first');
		my ($h) = grep { $_->{id} == $half } @$r;
		is($h->{duration_s}, 4, 'test_summary: duration_s of "half"');
		is($h->{above_pct}, 50, 'test_summary: above_pct of "half"');
		is($h->{peak_cpu}, 0.9, 'test_summary: peak_cpu of "half"');
		is($h->{owner}, 'alice', 'test_summary: owner');
	},
	'`user_activity`: one row per user' => sub {
		my $r = shift;
		is_deeply([map { $_->{username} } @$r], [qw(bob alice carol)],
			'user activity: latest run first, users without runs last');
	},
	'Runs per user' => sub {
		my $r = shift;
		is_deeply([map { [$_->{username}, $_->{tests}, $_->{active_tests}, $_->{samples}] } @$r],
			[[alice => 3, 0, 16], [bob => 2, 2, 5], [carol => 0, 0, 0]],
			'runs per user, with active runs and samples');
		my ($a) = grep { $_->{username} eq 'alice' } @$r;
		is($a->{hours_recorded}, 2.0, 'alice recorded 2 hours (and 14 s)');
	},
	'Longest runs' => sub {
		my $r = shift;
		is_deeply(ids($r), [$long, $busy, $half], 'longest finished runs first');
		is($r->[0]{duration_s}, 7200, 'the longest lasted 7200 s');
	},
	'Runs above threshold most of the time' => sub {
		my $r = shift;
		is_deeply(ids($r), [$busy], 'only "busy" was above its threshold most of the time');
		is($r->[0]{above_pct}, 100, 'at 100 %');
	},
	'Runs still active after a day' => sub {
		my $r = shift;
		is_deeply(ids($r), [$abandoned], 'the abandoned run, not the running one');
	},
	'Samples per day' => sub {
		my $r = shift;
		is(sum(map { $_->{samples} } @$r), $total_samples, 'samples per day add up to every sample');
		is_deeply({map { $_->{day} => $_->{samples} } @$r}, \%per_day,
			'samples per UTC day, on ' . keys(%per_day) . ' days');
		is_deeply([map { $_->{day} } @$r], [sort { $b cmp $a } keys %per_day], 'latest day first');
	},
	'Table sizes' => sub {
		my $r = shift;
		my %t = map { $_->{table_name} => $_ } @$r;
		ok($t{$_}, "table sizes: $_ listed") for qw(users tests usage_recent usage_chunk schema_migrations);
		like($t{usage_chunk}{total_size} // '', qr/^\d+ (bytes|kB|MB)$/, 'sizes are human-readable');
	},
	'Consistency check: the stored figures against the samples' => sub {
		my ($r, $sql) = @_;
		is_deeply($r, [], 'consistency check: the stored figures match the samples');
		# A check that cannot fail is no check: spoil one figure.
		$s->psql("UPDATE tests SET above_us = above_us + 1 WHERE id = $half");
		is_deeply(ids(rows($sql)), [$half], 'it finds a spoiled time above threshold');
		$s->psql("UPDATE tests SET cpu_max = 0.5 WHERE id = $long");
		is_deeply(ids(rows($sql)), [$half, $long], 'and a spoiled peak');
		# The documented repair puts them back from the samples.
		for my $id ($half, $long) {
			(my $fix = $repair) =~ s/:id\b/$id/g;
			$s->psql($fix);
		}
		is_deeply(rows($sql), [], 'the repair recipe rebuilds them');
		my $t = $user{alice}->api(GET => "test/$half")->{json};
		is($t->{time_above_threshold}, 2, 'the API agrees: 2 s above threshold');
		$s->psql("UPDATE tests SET mem_max = 0.1, mem_samples = 4 WHERE id = $half");
		is_deeply(ids(rows($sql)), [$half], 'it finds spoiled memory figures');
		(my $fix = $repair) =~ s/:id\b/$half/g;
		$s->psql($fix);
		is_deeply(rows($sql), [], '... and the repair rebuilds them');
		$t = $user{alice}->api(GET => "test/$half")->{json};
		is("$t->{max_mem_usage} $t->{mean_mem_usage}", '0.6 0.5', 'the API agrees: memory 0.6 at most, 0.5 on average');
		is($s->psql("SELECT peak_mem || ' ' || mean_mem FROM test_summary WHERE id = $half"), '0.6 0.5',
			'and test_summary');
	},
	'Who is connected' => sub {
		my $r = shift;
		my $n = sum(map { $_->{connections} } @$r) // 0;
		# Each worker: its statements' connection (made on first need)
		# and its revocation listener's.
		ok($n >= 2 && $n <= 4, "the workers' connections ($n, pool of 2, listeners included)");
	},
);

my %seen;
for my $b (@blocks) {
	my $name = $b->{heading};
	my $out = eval { $s->psql($b->{sql}); 1 };
	ok($out, "runs as written: $name") or diag $@;
	next unless $out;
	my $rows = rows($b->{sql});
	if (my $check = $checks{$name}) {
		$seen{$name}++;
		$check->($rows, $b->{sql});
	}
}
ok($seen{$_}, "docs/admin.md still has a query under \"$_\"") for sort keys %checks;

# The prose's statement to stop an abandoned test.
is($s->psql("SELECT test_stop(user_id, id, coalesce(last_ts, start_time)) "
	. "FROM tests WHERE id = $abandoned"), 'ok', 'stopping an abandoned test by hand');
my $t = $user{bob}->api(GET => "test/$abandoned")->{json};
ok(!$t->{active}, 'the abandoned test is stopped');
is(parse_ts($t->{end_time}), $now - 2 * $DAY + 3602 * $S, 'at its last sample');

$s->stop;
done_testing;
