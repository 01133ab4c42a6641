# GET /api/v1/test/:id/baseline (SPEC 6.4, docs/api.md): the caller's last
# N stopped tests before this one with its name and branch tag, and the
# median of each figure over them, checked against the same computed here
# in Perl over random histories built through the API; then hostile
# requests.
use strict;
use warnings;

use List::Util qw(min shuffle);
use Test::More;
use GH::Stack qw(is_error is_json_ok now_us ts);

my $seed = $ENV{GH_SEED} || time;
srand $seed;
note "GH_SEED=$seed";

my $s = GH::Stack->new(env => {TRACKER_USER_RATE => 0})->start;
my $alice = $s->user;
my $bob = $s->user;

# The figures a baseline takes the median of, as the test object has them
# (command's under "command").
my @FIGURES = qw(duration time_above_threshold max_cpu_usage mean_cpu_usage max_mem_usage);
my @COMMAND = qw(user_cpu system_cpu max_rss);
my @NAMES = ('build', 'test', 'lint');
# No branch tag (undef), and values that must not be taken for none.
my @BRANCHES = (undef, 'main', 'dev', '', 'null');

# --- a random history ------------------------------------------------------------

# run($user, %opt): create a test of name and branch, maybe send samples,
# maybe stop it with some command figures; its test object (as the stop
# answers it, or as created when it stays active).
sub run {
	my ($user, %o) = @_;
	my $start = now_us() - 3_600_000_000 + int rand 1_000_000_000;
	my %tags = (os => 'linux');
	$tags{branch} = $o{branch} if defined $o{branch};
	my $r = $user->api(POST => 'test', {name => $o{name}, threshold => 0.5,
		start_time => ts($start), tags => \%tags});
	die "create: $r->{status} $r->{content}" unless $r->{status} == 201;
	my $t = $r->{json};
	my $n = rand() < 0.2 ? 0 : 1 + int rand 6; # some runs have no sample
	my $with_mem = rand() < 0.6;               # some have no mem_usage
	if ($n) {
		my @batch = map {
			{timestamp => ts($start + $_ * 1_000_000), cpu_usage => int(rand 1000) / 1000,
			 ($with_mem ? (mem_usage => int(rand 1000) / 1000) : ())}
		} 1 .. $n;
		$r = $user->api(POST => "test/$t->{id}/usage", \@batch);
		die "usage: $r->{status} $r->{content}" unless $r->{status} == 200;
	}
	return $t if $o{active};
	my %stop = (end_time => ts($start + ($n + 1) * 1_000_000 + int rand 5_000_000));
	for my $k (@COMMAND, 'exit_status') {
		next if rand() < 0.3;
		$stop{$k} = $k eq 'max_rss' ? 1000 + int rand 100_000
			: $k eq 'exit_status' ? int rand 3 : int(rand 100_000) / 1000;
	}
	$r = $user->api(POST => "test/$t->{id}/stop", \%stop);
	die "stop: $r->{status} $r->{content}" unless $r->{status} == 200;
	return $r->{json};
}

# Alice's history, with Bob's runs of the same names and branches in
# between (they must never count), and a few of Alice's left active.
my (@mine, @bobs);
for my $i (1 .. 60) {
	my %o = (name => $NAMES[rand @NAMES], branch => $BRANCHES[rand @BRANCHES]);
	if ($i % 4 == 0) { # every fourth run is Bob's
		push @bobs, run($bob, %o);
		next;
	}
	$o{active} = @mine % 8 == 5; # every eighth left active
	push @mine, run($alice, %o);
}
note scalar(@mine) . ' runs of Alice, ' . scalar(grep { $_->{active} } @mine) . ' active';

# --- the same, computed here ---------------------------------------------------

sub median {
	my @v = sort { $a <=> $b } grep { defined } @_;
	return undef unless @v;
	return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}

sub branch_of { $_[0]{tags}{branch} }

sub same_branch {
	my ($a, $b) = map { branch_of($_) } @_;
	return !defined $a && !defined $b || defined $a && defined $b && $a eq $b;
}

# expected($test, $runs, $history): the baseline object for $test among
# the runs of $history (default Alice's).
sub expected {
	my ($t, $n, $history) = @_;
	my @runs = grep {
		!$_->{active} && $_->{id} < $t->{id} && $_->{name} eq $t->{name} && same_branch($_, $t)
	} sort { $b->{id} <=> $a->{id} } @{ $history || \@mine };
	splice @runs, $n if @runs > $n;
	my %e = (id => $t->{id}, runs => [map { $_->{id} } @runs], count => scalar @runs);
	for my $k (@FIGURES) {
		$e{$k} = median(map { $_->{$k} } @runs);
	}
	for my $k (@COMMAND) {
		$e{$k} = median(map { $_->{command} ? $_->{command}{$k} : undef } @runs);
	}
	return \%e;
}

# Does the answer $r hold the baseline $e (figures within a rounding)?
sub is_baseline {
	my ($r, $e, $label) = @_;
	my $got = $r->{json};
	my @bad;
	push @bad, "status $r->{status}" unless $r->{status} == 200;
	push @bad, 'keys: ' . join(',', sort keys %{ $got || {} })
		unless join(',', sort keys %{ $got || {} }) eq join(',', sort keys %$e);
	for my $k (qw(id count)) {
		push @bad, "$k $got->{$k} (want $e->{$k})" unless ($got->{$k} // -1) == $e->{$k};
	}
	push @bad, "runs [@{ $got->{runs} || [] }] (want [@{ $e->{runs} }])"
		unless "@{ $got->{runs} || [] }" eq "@{ $e->{runs} }";
	for my $k (@FIGURES, @COMMAND) {
		my ($g, $w) = ($got->{$k}, $e->{$k});
		next if !defined $g && !defined $w;
		push @bad, "$k " . ($g // 'null') . ' (want ' . ($w // 'null') . ')'
			unless defined $g && defined $w && abs($g - $w) <= 1e-9 * (1 + abs $w);
	}
	ok(!@bad, $label) or diag join '; ', @bad;
}

# Every run of Alice with the default (10); a sample of them with runs=1,
# 2, 3, 4 (odd and even counts), 7 and 100 (more than any history).
for my $t (@mine) {
	is_baseline($alice->api(GET => "test/$t->{id}/baseline"), expected($t, 10),
		"test $t->{id} ($t->{name}, branch " . (branch_of($t) // 'none') . '): default runs');
}
my @some = (shuffle @mine)[0 .. min(11, $#mine)];
for my $n (1, 2, 3, 4, 7, 100) {
	for my $t (@some) {
		is_baseline($alice->api(GET => "test/$t->{id}/baseline?runs=$n"), expected($t, $n),
			"test $t->{id}: runs=$n");
	}
}
# Bob's own baselines: his runs only, though Alice has runs of the same
# names and branches in between.
for my $t (@bobs[-3 .. -1]) {
	is_baseline($bob->api(GET => "test/$t->{id}/baseline?runs=100"), expected($t, 100, \@bobs),
		"Bob's test $t->{id}: his runs only");
}
my ($first) = sort { $a->{id} <=> $b->{id} } @mine;
my $r = $alice->api(GET => "test/$first->{id}/baseline");
is_json_ok($r, 200, 'the first test: no run before it');
is_deeply($r->{json}{runs}, [], '... runs []');
is($r->{json}{count}, 0, '... count 0');
ok(!grep({ defined $r->{json}{$_} } @FIGURES, @COMMAND), '... every figure null');
ok(!exists $r->{json}{exit_status}, 'no median of exit statuses');

# A history of its own with known figures: three runs, one without command
# figures; the median of the two that have them is their mean.
my @known;
for my $i (1 .. 3) {
	my $start = now_us() - 100_000_000;
	my $t = $alice->api(POST => 'test', {name => 'known', start_time => ts($start)})->{json};
	my %stop = (end_time => ts($start + $i * 2_000_000));
	%stop = (%stop, user_cpu => $i, system_cpu => $i / 4, max_rss => 1000 * $i) if $i > 1;
	$alice->api(POST => "test/$t->{id}/stop", \%stop);
	push @known, $t->{id};
}
my $last = $alice->api(POST => 'test', {name => 'known'})->{json}{id};
$r = $alice->api(GET => "test/$last/baseline");
is_json_ok($r, 200, 'a baseline of three known runs, asked by an active test');
is_deeply($r->{json}{runs}, [reverse @known], '... newest first');
is($r->{json}{duration}, 4, '... duration: the middle of 2, 4, 6 s');
is($r->{json}{user_cpu}, 2.5, '... user_cpu: the mean of the two that have it');
is($r->{json}{max_rss}, 2500, '... max_rss in KiB');
is($r->{json}{max_cpu_usage}, undef, '... max_cpu_usage null: no run has a sample');
is($r->{json}{time_above_threshold}, 0, '... time above threshold 0');
$r = $alice->api(GET => "test/$known[1]/baseline");
is_deeply($r->{json}{runs}, [$known[0]], 'the second run: only the first before it');
is($r->{json}{user_cpu}, undef, '... which has no user_cpu: null');

# --- hostile -------------------------------------------------------------------

my $id = $mine[-1]{id};
is_error($s->api(GET => "test/$id/baseline"), 401, 'unauthorized', 'no token');
is_error($s->api(GET => "test/$id/baseline", undef, Authorization => 'Bearer nonsense'), 401,
	'unauthorized', 'a bad token');
is_error($s->api(GET => "test/$id/baseline", undef, Authorization => 'Bearer '
	. $s->jwt({sub => '' . $alice->id, iat => int time, exp => int(time) + 60}, key => 'not the secret')),
	401, 'unauthorized', "Alice's id signed with another key");
is_error($bob->api(GET => "test/$id/baseline"), 404, 'not_found', "another user's test");
is_error($bob->api(GET => "test/$id/baseline?runs=3"), 404, 'not_found', '... with runs');
my $max_id = $s->psql('SELECT max(id) FROM tests');
for my $bad ($max_id + 1, 0, '9223372036854775807', '9223372036854775808', '99999999999999999999999',
	'abc', '-1', '01', '1.0', '%201', '1%20')
{
	is_error($alice->api(GET => "test/$bad/baseline"), 404, 'not_found', "test id [$bad]");
}
for my $bad (0, 101, -1, 'abc', '1.5', '', '%201', '1%20', '+1', '1e1', '10x', '0x10', '99999999999999999999',
	'%00', '1%00', '2%26runs=3')
{
	is_error($alice->api(GET => "test/$id/baseline?runs=$bad"), 400, 'invalid_field', "runs=[$bad]",
		field => 'runs');
}
is_json_ok($alice->api(GET => "test/$id/baseline?runs=1"), 200, 'runs=1');
is_json_ok($alice->api(GET => "test/$id/baseline?runs=100"), 200, 'runs=100');
$r = $alice->api(GET => "test/$last/baseline?runs=1&runs=3");
is_json_ok($r, 200, 'runs repeated: the first one counts (as limit does)');
is($r->{json}{count}, 1, '... count 1');
is_error($alice->api(GET => "test/$id/baseline?runs=" . ('1' x 6000)), 400, 'invalid_field',
	'a huge runs (as much as nginx takes)', field => 'runs');
is_json_ok($alice->api(GET => "test/$id/baseline?x=" . ('a' x 6000) . '&runs=2'), 200,
	'a long query string of other parameters');
is_error($alice->api(POST => "test/$id/baseline", {}), 405, 'method_not_allowed', 'POST');
is_error($alice->api(DELETE => "test/$id/baseline"), 405, 'method_not_allowed', 'DELETE');
is_error($alice->api(GET => "test/$id/baseline/x"), 404, 'not_found', 'a longer path');
is($s->psql("SELECT count(*) FROM tests WHERE id = $id AND user_id = " . $alice->id), 1,
	'the test is still there');

done_testing;
