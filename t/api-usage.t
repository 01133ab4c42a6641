# Usage samples: single and batch POST, retries, stopped tests, the
# time_above_threshold sum, read-back and CSV (SPEC 2 and 3).
use strict;
use warnings;

use List::Util qw(shuffle sum max min);
use Test::More;
use GH::Stack qw(is_error is_json_ok is_num is_bool fresh ts parse_ts now_us);

my $seed = $ENV{GH_SEED} // time;
srand $seed;
diag "random seed $seed (GH_SEED=$seed reproduces)";

my $s = GH::Stack->new->start;
my $u = $s->user;
my $bob = $s->user;
my $S0 = parse_ts('2024-06-01T00:00:00Z');
my $SEC = 1_000_000;

sub new_test {
	my (%f) = @_;
	my $r = $u->api(POST => 'test', {start_time => ts($S0), %f});
	die "create test: $r->{status} $r->{content}" unless $r->{status} == 201;
	return $r->{json}{id};
}
sub post { my ($id, $body, @h) = @_; $u->api(POST => "test/$id/usage", $body, @h) }
sub sample { my ($us, $cpu) = @_; return {cpu_usage => $cpu, timestamp => ts($us)} }
sub get { $u->api(GET => "test/$_[0]")->{json} }
sub samples_of {
	my ($id, $q) = @_;
	my $r = $u->api(GET => "test/$id/usage" . ($q // ''));
	return $r->{json}{samples} || [];
}

# The SPEC 2 formula: samples by timestamp, t_0 = start_time, gaps < 0 are 0.
sub expected_above_us {
	my ($start, $thr, @smp) = @_;
	my ($prev, $sum) = ($start, 0);
	for my $x (sort { $a->[0] <=> $b->[0] } @smp) {
		my $gap = $x->[0] - $prev;
		$sum += $gap if $gap > 0 && $x->[1] > $thr;
		$prev = $x->[0];
	}
	return $sum;
}

# --- single samples ----------------------------------------------------------------

my $t1 = new_test();
my $r = post($t1, sample($S0 + 1 * $SEC, 0.7));
is_json_ok($r, 201, 'single sample: 201');
my $f = fresh($r);
ok(is_num($f->{id}) && $f->{id} == $t1, 'single sample: id is the test id');
ok(is_bool($f->{above_threshold}) && $f->{above_threshold}, '0.7 > 0.5: above');
$r = post($t1, sample($S0 + 2 * $SEC, 0.5));
is($r->{status}, 201, 'sample equal to the threshold: 201');
ok(is_bool(fresh($r)->{above_threshold}) && !$r->{json}{above_threshold},
	'cpu_usage == threshold is not above');
$r = post($t1, sample($S0 + 3 * $SEC, 0.5000001));
ok($r->{status} == 201 && $r->{json}{above_threshold}, '0.5000001 is above');
$r = post($t1, sample($S0 + 4 * $SEC, 0));
ok($r->{status} == 201 && !$r->{json}{above_threshold}, 'integer 0 accepted, not above');
$r = post($t1, sample($S0 + 5 * $SEC, 1));
ok($r->{status} == 201 && $r->{json}{above_threshold}, 'integer 1 accepted, above');

# repeats: 200, the stored sample's above_threshold, nothing new stored
$r = post($t1, sample($S0 + 1 * $SEC, 0.1));
is_json_ok($r, 200, 'repeat of a timestamp: 200');
ok($r->{json}{above_threshold}, 'repeat answers the stored sample\'s above_threshold');
is($r->{json}{id}, $t1, 'repeat answers the test id');
$r = post($t1, {cpu_usage => 0.1, timestamp => '2024-06-01T02:00:01+02:00'});
is($r->{status}, 200, 'repeat of the same instant in another offset: 200');
$r = post($t1, {cpu_usage => 0.9, timestamp => '2024-06-01T00:00:02.000000Z'});
ok($r->{status} == 200 && !$r->{json}{above_threshold},
	'repeat written with a fraction: 200, stored sample not above');
my $t = get($t1);
is($t->{samples}, 5, 'repeats stored nothing (5 samples)');
my $smp = samples_of($t1);
is($smp->[0]{cpu_usage}, 0.7, 'the first value is kept, not overwritten');
is($t->{max_cpu_usage}, 1, 'max_cpu_usage');
ok(abs($t->{mean_cpu_usage} - (0.7 + 0.5 + 0.5000001 + 0 + 1) / 5) < 1e-12, 'mean_cpu_usage');
is(sprintf('%.0f', $t->{time_above_threshold} * 1e6),
	expected_above_us($S0, 0.5, [$S0 + 1e6, 0.7], [$S0 + 2e6, 0.5], [$S0 + 3e6, 0.5000001],
		[$S0 + 4e6, 0], [$S0 + 5e6, 1]),
	'time_above_threshold of five samples');

# timestamp defaults to now
my $before = now_us();
$r = post($t1, {cpu_usage => 0.3});
my $after = now_us();
is($r->{status}, 201, 'sample without timestamp: 201');
$smp = samples_of($t1);
my $last = parse_ts($smp->[-1]{timestamp});
ok($last >= $before - $SEC && $last <= $after + $SEC, 'timestamp defaults to now');
is($smp->[-1]{cpu_usage}, 0.3, '... with its value');

# validation: 400, nothing stored
my $n = get($t1)->{samples};
my $ts = ts($S0 + 100 * $SEC);
for my $bad ([-0.01, '-0.01'], [1.01, '1.01'], [2, '2'], ['0.5', 'a string'],
    [undef, 'null'], [JSON::PP::true, 'true'], [[0.5], 'an array'], [{}, 'an object']) {
	is_error(post($t1, {cpu_usage => $bad->[0], timestamp => $ts}), 400, 'invalid_field',
		"cpu_usage $bad->[1] refused", field => 'cpu_usage');
}
for my $bad ('1e400', '-1e400', '99999999999999999999') {
	is_error(post($t1, qq({"cpu_usage":$bad,"timestamp":"$ts"})), 400, 'invalid_field',
		"cpu_usage $bad refused", field => 'cpu_usage');
}
for my $bad ('NaN', 'Infinity') {
	is_error(post($t1, qq({"cpu_usage":$bad,"timestamp":"$ts"})), 400,
		[qw(invalid_json invalid_field)], "cpu_usage $bad refused");
}
is_error(post($t1, {timestamp => $ts}), 400, 'invalid_field', 'cpu_usage missing',
	field => 'cpu_usage');
for my $bad (undef, 'bad', 1717200000, '2024-06-01T00:00:61Z', '') {
	is_error(post($t1, {cpu_usage => 0.5, timestamp => $bad}), 400, 'invalid_field',
		'timestamp ' . ($bad // 'null') . ' refused', field => 'timestamp');
}
is_error(post($t1, {cpu_usage => 0.5, timestamp => $ts, cpu => 1}), 400, 'invalid_field',
	'unknown field refused', field => 'cpu');
is_error(post($t1, '"0.5"'), 400, 'invalid_json', 'a JSON string body');
is_error(post($t1, '0.5'), 400, 'invalid_json', 'a JSON number body');
is_error(post($t1, ''), 400, 'invalid_json', 'an empty body');
is(get($t1)->{samples}, $n, 'no refused sample was stored');

# --- batches -------------------------------------------------------------------------

my $t2 = new_test();
$r = post($t2, [sample($S0 + $SEC, 0.9)]);
is_json_ok($r, 200, 'batch of 1: 200');
$f = fresh($r);
ok(is_num($f->{id}) && $f->{id} == $t2, 'batch: id is the test id');
ok(is_num($f->{received}) && $f->{received} == 1, 'batch of 1: received 1');
ok(is_num($f->{stored}) && $f->{stored} == 1, 'batch of 1: stored 1');
my @thousand = map { sample($S0 + (10 + $_) * $SEC, ($_ % 100) / 100) } 1 .. 1000;
$r = post($t2, \@thousand);
is_json_ok($r, 200, 'batch of 1000: 200');
is_deeply([@{ $r->{json} }{qw(received stored)}], [1000, 1000], 'batch of 1000: all stored');
is(get($t2)->{samples}, 1001, '1001 samples');
my @more = map { sample($S0 + (2000 + $_) * $SEC, 0.5) } 1 .. 1001;
is_error(post($t2, \@more), 400, 'invalid_field', 'batch of 1001 refused');
is_error(post($t2, []), 400, 'invalid_field', 'empty batch refused');
is(get($t2)->{samples}, 1001, 'refused batches stored nothing');

my $sa = sample($S0 + 3000 * $SEC, 0.6);
my $sb = sample($S0 + 3001 * $SEC, 0.6);
$r = post($t2, [$sa, $sa, $sb]);
is_deeply([@{ $r->{json} || {} }{qw(received stored)}], [3, 2],
	'batch with a duplicate inside: received 3, stored 2');
$r = post($t2, [$sa, sample($S0 + 3002 * $SEC, 0.1)]);
is_deeply([@{ $r->{json} || {} }{qw(received stored)}], [2, 1],
	'batch with an already stored sample: received 2, stored 1');
$r = post($t2, [$sa, $sb, $thousand[5]]);
is($r->{status}, 200, 'batch of repeats only: 200');
is_deeply([@{ $r->{json} || {} }{qw(received stored)}], [3, 0], '... stored 0');
$r = post($t2, [sample($S0 + 3003 * $SEC, 0.2),
	{cpu_usage => 0.3, timestamp => ts($S0 + 3003 * $SEC - 3600 * $SEC) =~ s/Z$/-01:00/r}]);
is_deeply([@{ $r->{json} || {} }{qw(received stored)}], [2, 1],
	'the same instant twice in two notations: stored once');
is(get($t2)->{samples}, 1001 + 4, 'sample count after duplicates');

# all or nothing
$n = get($t2)->{samples};
my @fresh5 = map { sample($S0 + (4000 + $_) * $SEC, 0.8) } 1 .. 5;
for my $bad ([{cpu_usage => 2, timestamp => ts($S0 + 4100 * $SEC)}, 'cpu_usage 2', 'invalid_field'],
    [{cpu_usage => 0.5}, 'no timestamp', 'invalid_field'],
    [{cpu_usage => 0.5, timestamp => 'soon'}, 'bad timestamp', 'invalid_field'],
    [{cpu_usage => 0.5, timestamp => ts($S0), x => 1}, 'unknown field', 'invalid_field'],
    [{timestamp => ts($S0 + 4101 * $SEC)}, 'no cpu_usage', 'invalid_field'],
    [{cpu_usage => undef, timestamp => ts($S0 + 4102 * $SEC)}, 'cpu_usage null', 'invalid_field'],
    [42, 'a number element', 'invalid_field'],
    [undef, 'a null element', 'invalid_field'],
    [[sample($S0, 0.5)], 'an array element', 'invalid_field']) {
	my ($el, $what, $code) = @$bad;
	is_error(post($t2, [@fresh5[0 .. 2], $el, @fresh5[3, 4]]), 400, $code,
		"batch with one element with $what: 400 $code");
}
my @big = map { sample($S0 + (5000 + $_) * $SEC, 0.4) } 1 .. 1000;
$big[500] = {cpu_usage => -1, timestamp => ts($S0 + 5500 * $SEC)};
is_error(post($t2, \@big), 400, 'invalid_field', 'batch of 1000 with one bad element in the middle');
is(get($t2)->{samples}, $n, 'no sample of a refused batch was stored');
is(post($t2, $fresh5[0])->{status}, 201, '... its good samples are still new');

# --- stopped tests ---------------------------------------------------------------------------

my $t3 = new_test();
post($t3, [map { sample($S0 + $_ * $SEC, 0.9) } 1 .. 3]);
my $E = $S0 + 10 * $SEC;
is($u->api(POST => "test/$t3/stop", {end_time => ts($E)})->{status}, 200, 'stop at S0+10s');
is(post($t3, sample($E, 0.9))->{status}, 201, 'stopped: sample at end_time accepted');
is(post($t3, sample($E - 2 * $SEC, 0.1))->{status}, 201, 'stopped: earlier new sample accepted');
is_error(post($t3, sample($E + 1, 0.9)), 409, 'test_stopped', 'stopped: 1 us after end_time: 409');
is_error(post($t3, {cpu_usage => 0.5}), 409, 'test_stopped', 'stopped: default timestamp (now): 409');
is(post($t3, sample($E, 0.2))->{status}, 200, 'stopped: repeat of end_time sample: 200');
is(post($t3, sample($S0 + $SEC, 0.2))->{status}, 200, 'stopped: repeat of an old sample: 200');
$n = get($t3)->{samples};
is_error(post($t3, [sample($E - 3 * $SEC, 0.5), sample($E + 5 * $SEC, 0.5)]), 409, 'test_stopped',
	'stopped: batch with one sample after end_time: 409');
is(get($t3)->{samples}, $n, '... nothing of it stored');
$r = post($t3, [sample($E - 3 * $SEC, 0.5), sample($E - 4 * $SEC, 0.5), sample($E, 0.1)]);
is_deeply([$r->{status}, @{ $r->{json} || {} }{qw(received stored)}], [200, 3, 2],
	'stopped: batch up to end_time accepted');
$t = get($t3);
is($t->{samples}, 7, 'stopped test: 7 samples');
is(sprintf('%.0f', $t->{time_above_threshold} * 1e6),
	expected_above_us($S0, 0.5, map { [$S0 + $_->[0] * $SEC, $_->[1]] }
		[1, 0.9], [2, 0.9], [3, 0.9], [6, 0.5], [7, 0.5], [8, 0.1], [10, 0.9]),
	'stopped test: time_above_threshold');

# --- samples before start_time ---------------------------------------------------------------

my $t4 = new_test();
$r = post($t4, sample($S0 - 10 * $SEC, 0.9));
is($r->{status}, 201, 'sample before start_time stored');
$t = get($t4);
is_deeply([@$t{qw(samples max_cpu_usage mean_cpu_usage time_above_threshold)}], [1, 0.9, 0.9, 0],
	'a sample before start_time counts, with a gap of 0');
post($t4, sample($S0 - 20 * $SEC, 0.9));
post($t4, sample($S0 + 5 * $SEC, 0.9));
my @pre = ([$S0 - 10 * $SEC, 0.9], [$S0 - 20 * $SEC, 0.9], [$S0 + 5 * $SEC, 0.9]);
is(sprintf('%.0f', get($t4)->{time_above_threshold} * 1e6), expected_above_us($S0, 0.5, @pre),
	'samples around start_time: the SPEC formula');

# --- time_above_threshold exact whatever the arrival order ------------------------------------------

my $thr = 0.42;
my $t5 = new_test(threshold => $thr);
my %seen;
my @all;
push @all, [$S0, 0.9], [$S0 - 3 * $SEC, 0.9];    # at start, before start
$seen{$_->[0]}++ for @all;
while (@all < 400) {
	my $us = $S0 + int(rand(600 * $SEC));
	next if $seen{$us}++;
	my $cpu = rand() < 0.15 ? $thr : 0 + sprintf('%.2f', rand());
	push @all, [$us, $cpu];
}
my @order = shuffle @all;
my ($stored, $received) = (0, 0);
my @statuses;
while (@order) {
	if (rand() < 0.3) {
		my $x = shift @order;
		$r = post($t5, sample(@$x));
		push @statuses, $r->{status};
		$stored++ if $r->{status} == 201;
	} else {
		my @chunk = splice @order, 0, 1 + int rand 40;
		# and a few repeats of samples sent before
		push @chunk, $all[int rand @all] for 1 .. int rand 3;
		$r = post($t5, [map { sample(@$_) } shuffle @chunk]);
		push @statuses, $r->{status};
		$stored += $r->{json}{stored} // 0;
		$received += $r->{json}{received} // 0;
	}
}
ok(!grep({ $_ != 200 && $_ != 201 } @statuses), 'random arrival: every POST succeeded');
is($stored, 400, 'random arrival: each sample stored exactly once');
$t = get($t5);
is($t->{samples}, 400, 'random arrival: samples 400');
my $want = expected_above_us($S0, $thr, @all);
is(sprintf('%.0f', $t->{time_above_threshold} * 1e6), $want,
	sprintf 'random arrival: time_above_threshold exact (%.6f s)', $want / 1e6);
is($t->{max_cpu_usage}, max(map { $_->[1] } @all), 'random arrival: max_cpu_usage');
my $mean = sum(map { $_->[1] } @all) / @all;
ok(abs($t->{mean_cpu_usage} - $mean) < 1e-9, 'random arrival: mean_cpu_usage')
	or diag "got $t->{mean_cpu_usage}, want $mean";

# the same samples, one by one in reverse order, in another test
my $t6 = new_test(threshold => $thr);
my @rev = sort { $b->[0] <=> $a->[0] } @all[0 .. 99];
@statuses = map { post($t6, sample(@$_))->{status} } @rev;
ok(!grep({ $_ != 201 } @statuses), 'reverse arrival: 100 samples stored');
is(sprintf('%.0f', get($t6)->{time_above_threshold} * 1e6),
	expected_above_us($S0, $thr, @rev), 'reverse arrival: time_above_threshold exact');

# overlapping batches from 4 connections at once
my $t8 = new_test(threshold => $thr);
my @pool = @all[0 .. 299];
my @got = $s->parallel(4, sub {
	my ($stored, $bad) = (0, 0);
	for (1 .. 8) {
		my @chunk = map { $pool[int rand @pool] } 1 .. 60;
		my $r = post($t8, [map { sample(@$_) } @chunk]);
		$r->{status} == 200 ? ($stored += $r->{json}{stored}) : $bad++;
	}
	# and every sample once more, so that all of them are sent
	my $r = post($t8, [map { sample(@$_) } @pool[($_[0] - 1) * 75 .. $_[0] * 75 - 1]]);
	$r->{status} == 200 ? ($stored += $r->{json}{stored}) : $bad++;
	return [$stored, $bad];
});
is(sum(map { $_ ? $_->[1] : 1 } @got), 0, 'concurrent batches: all answered 200');
is(sum(map { $_ ? $_->[0] : 0 } @got), 300, 'concurrent batches: each sample stored once');
$t = get($t8);
is($t->{samples}, 300, 'concurrent batches: 300 samples');
is(sprintf('%.0f', $t->{time_above_threshold} * 1e6), expected_above_us($S0, $thr, @pool),
	'concurrent batches: time_above_threshold exact');

# --- read-back ---------------------------------------------------------------------------------

$r = $u->api(GET => "test/$t5/usage");
is_json_ok($r, 200, 'read-back: 200');
is($r->{json}{id}, $t5, 'read-back: id is the test id');
my @sorted = sort { $a->[0] <=> $b->[0] } @all;
my $got = $r->{json}{samples} || [];
is(scalar @$got, 400, 'read-back: all 400 samples (default limit 1000)');
is_deeply([map { parse_ts($_->{timestamp}) } @$got], [map { $_->[0] } @sorted],
	'read-back: oldest first, timestamps exact');
is_deeply([map { $_->{cpu_usage} } @$got], [map { $_->[1] } @sorted], 'read-back: values');
is_deeply([map { $_->{above_threshold} ? 1 : 0 } @$got], [map { $_->[1] > $thr ? 1 : 0 } @sorted],
	'read-back: above_threshold per sample');
$f = fresh($r)->{samples}[0];
ok(is_num($f->{cpu_usage}) && is_bool($f->{above_threshold})
	&& $f->{timestamp} =~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{6})?Z$/,
	'read-back: field types and timestamp format');

$got = samples_of($t5, '?limit=10');
is_deeply([map { parse_ts($_->{timestamp}) } @$got], [map { $_->[0] } @sorted[0 .. 9]], 'limit=10');
my $after_ts = $got->[-1]{timestamp};
$got = samples_of($t5, "?limit=10&after=$after_ts");
is_deeply([map { parse_ts($_->{timestamp}) } @$got], [map { $_->[0] } @sorted[10 .. 19]],
	'after is exclusive: the next 10');
(my $other = ts(parse_ts($after_ts) + 7200 * $SEC)) =~ s/Z$/%2B02:00/;
$got = samples_of($t5, "?limit=10&after=$other");
is(parse_ts($got->[0]{timestamp} // ''), $sorted[10][0], 'after with an offset (+02:00)');
$got = samples_of($t5, '?after=' . ts($sorted[-1][0]));
is_deeply($got, [], 'after the last sample: empty');
$got = samples_of($t5, '?after=' . ts($sorted[-1][0] - 1));
is(scalar @$got, 1, 'after 1 us before the last sample: one');
is(scalar @{ samples_of($t5, '?limit=10000') }, 400, 'limit=10000 accepted');
is(scalar @{ samples_of($t5, '?limit=1&foo=bar') }, 1, 'unknown parameter ignored');
for my $bad ('limit=10001', 'limit=0', 'limit=-1', 'limit=abc', 'limit=') {
	is_error($u->api(GET => "test/$t5/usage?$bad"), 400, 'invalid_field', "read-back: $bad refused",
		field => 'limit');
}
for my $bad ('after=yesterday', 'after=2024-06-01', 'after=', 'after=2024-06-01T00:00:60Z') {
	is_error($u->api(GET => "test/$t5/usage?$bad"), 400, 'invalid_field', "read-back: $bad refused",
		field => 'after');
}

# default limit 1000, paging with after
my $t7 = new_test();
post($t7, [map { sample($S0 + $_ * 1000, 0.5) } 1 .. 1000]);
post($t7, [map { sample($S0 + $_ * 1000, 0.5) } 1001 .. 1005]);
$got = samples_of($t7);
is(scalar @$got, 1000, 'read-back: 1000 by default');
$got = samples_of($t7, "?after=$got->[-1]{timestamp}");
is_deeply([map { parse_ts($_->{timestamp}) } @$got], [map { $S0 + $_ * 1000 } 1001 .. 1005],
	'read-back: the rest after the last timestamp');

# CSV
$r = $u->api(GET => "test/$t5/usage?limit=5", undef, Accept => 'text/csv');
is($r->{status}, 200, 'CSV: 200');
is(lc($r->{headers}{'content-type'} // ''), 'text/csv; charset=utf-8', 'CSV: content type');
my @lines = split /\r?\n/, $r->{content};
is($lines[0], 'timestamp,cpu_usage,above_threshold', 'CSV: header line');
is(scalar @lines, 6, 'CSV: one row per sample');
my @rows = map { [split /,/] } @lines[1 .. $#lines];
is_deeply([map { parse_ts($_->[0]) } @rows], [map { $_->[0] } @sorted[0 .. 4]], 'CSV: timestamps');
is_deeply([map { 0 + $_->[1] } @rows], [map { $_->[1] } @sorted[0 .. 4]], 'CSV: values');
is_deeply([map { $_->[2] } @rows], [map { $_->[1] > $thr ? 'true' : 'false' } @sorted[0 .. 4]],
	'CSV: above_threshold as true/false');
$r = $u->api(GET => "test/$t5/usage?limit=3&after=" . ts($sorted[4][0]), undef,
	Accept => 'text/csv');
@lines = split /\r?\n/, $r->{content};
is_deeply([map { parse_ts((split /,/)[0]) } @lines[1 .. $#lines]],
	[map { $_->[0] } @sorted[5 .. 7]], 'CSV: after and limit');
$r = $u->api(GET => "test/$t5/usage?limit=1", undef, Accept => 'application/json');
is_json_ok($r, 200, 'Accept: application/json gives JSON');
is_error($u->api(GET => 'test/999999/usage', undef, Accept => 'text/csv'), 404, 'not_found',
	'CSV of an unknown test: JSON 404');

# --- other users' tests ---------------------------------------------------------------------------

my $bt = $bob->api(POST => 'test', {})->{json}{id};
is_error(post($bt, sample(now_us(), 0.5)), 404, 'not_found', "sample for bob's test: 404");
is_error(post($bt, [sample(now_us(), 0.5)]), 404, 'not_found', "batch for bob's test: 404");
is_error($u->api(GET => "test/$bt/usage"), 404, 'not_found', "bob's samples: 404");
is($bob->api(GET => "test/$bt")->{json}{samples}, 0, "bob's test got nothing");

# --- packed storage (schema 4) ------------------------------------------------------------------

# Samples land in usage_recent and are packed into usage_chunk rows; every
# answer must be the same as if each sample had a row of its own.  How
# they are packed (how many to a chunk, when) is the schema's business:
# these check what the API and the `usage` view answer.
my $uid = $u->id;
sub view_count { $s->psql("SELECT count(*) FROM usage WHERE test_id = $_[0]") }
# Each chunk sorted with first_ts/last_ts its ends, at most chunk_size(),
# no overlap.
sub chunks_sound {
	my $id = shift;
	return $s->psql(qq{SELECT count(*) FROM (
		SELECT c.first_ts <> c.ts[1] OR c.last_ts <> c.ts[cardinality(c.ts)]
		    OR c.ts <> (SELECT array_agg(e ORDER BY e) FROM unnest(c.ts) e)
		    OR cardinality(c.ts) > chunk_size()
		    OR c.first_ts <= lag(c.last_ts) OVER (ORDER BY c.last_ts) AS bad
		FROM usage_chunk c WHERE c.test_id = $id) q WHERE bad});
}
sub all_samples {
	my ($id, $limit) = @_;
	my ($q, @all) = ("?limit=$limit");
	while (my @page = @{ samples_of($id, $q) }) {
		push @all, [parse_ts($_->{timestamp}), $_->{cpu_usage}] for @page;
		$q = "?limit=$limit&after=$page[-1]{timestamp}";
	}
	return \@all;
}

my $tp = new_test(threshold => 0.5);
# 300 in order, as a running client sends them: packed as they come.
my @have = map { [$S0 + $_ * 500_000, ($_ % 10) / 10 + 0.05] } 1 .. 300;
$r = post($tp, [map { sample(@$_) } @have]);
is($r->{json}{stored}, 300, 'packed: 300 in order stored');
is(get($tp)->{samples}, 300, 'packed: the test counts 300');
is_deeply(all_samples($tp, 1000), \@have, 'packed: all 300 read back, in order');
is(view_count($tp), 300, 'packed: the usage view shows 300');
# Repeats of packed samples: nothing new, the stored value decides.
$r = post($tp, sample($have[149][0], 0.99));
is($r->{status}, 200, 'packed: a repeat of a packed sample is 200');
ok(is_bool($r->{json}{above_threshold}) && !$r->{json}{above_threshold},
	'... with the stored sample\'s above_threshold (false; 0.99 was not stored)');
my $chunk = $s->psql('SELECT chunk_size()');    # samples to a chunk
$r = post($tp, [map { sample($have[$_][0], 0.01) } 0, $chunk - 1, $chunk, 299]);
is($r->{json}{stored}, 0, 'packed: a batch of repeats (chunk ends) stores nothing');
# Late samples inside chunks, before the first, between and after: exact.
my @late = ([$S0 + 250_000, 0.9], [$S0 + $chunk * 500_000 + 1, 0.7], [$S0 + $chunk * 500_000 - 1, 0.2],
	[$S0 + 60 * 500_000 + 250_000, 0.8], [$S0 + 301 * 500_000, 0.6], [$S0 + 1, 0.51]);
for my $x (@late) {
	$r = post($tp, sample(@$x));
	is($r->{status}, 201, 'packed: late sample at +' . ($x->[0] - $S0) . ' us stored');
	push @have, $x;
}
my @want = sort { $a->[0] <=> $b->[0] } @have;
my $tg = get($tp);
is($tg->{samples}, 306, 'packed: 306 samples');
is(sprintf('%.0f', $tg->{time_above_threshold} * 1e6), expected_above_us($S0, 0.5, @have),
	'packed: time_above_threshold exact with late samples inside chunks');
is_deeply(all_samples($tp, 7), \@want, 'packed: read-back 7 at a time across chunks and usage_recent');
is_deeply(all_samples($tp, 10000), \@want, 'packed: read-back in one page');
is(chunks_sound($tp), 0, 'packed: chunks sorted, at most chunk_size(), not overlapping');
# Stopping packs the rest; a late sample before end_time is packed at once.
$r = $u->api(POST => "test/$tp/stop", {end_time => ts($S0 + 400 * 500_000)});
is($r->{status}, 200, 'packed: stop');
$r = post($tp, sample($S0 + 350 * 500_000, 0.95));
is($r->{status}, 201, 'packed: a late sample of a stopped test (before end_time) stored');
push @have, [$S0 + 350 * 500_000, 0.95];
is(get($tp)->{samples}, 307, '... and counted');
is_deeply(all_samples($tp, 1000), [sort { $a->[0] <=> $b->[0] } @have], 'packed: read-back after stop');
is(sprintf('%.0f', get($tp)->{time_above_threshold} * 1e6), expected_above_us($S0, 0.5, @have),
	'packed: time_above_threshold exact after stop');
is(view_count($tp), 307, 'packed: the usage view shows 307');

# Random batches against SQL (usage_add directly, as the tracker calls it):
# in order, far out of order, repeats, inside batches too; every few calls the
# stored samples, the figures, the chunk shapes and the paged read-back are
# checked against what was sent.
my $tq = new_test(threshold => 0.5);
my $prop = <<'SQL';
CREATE TEMP TABLE sent (ts timestamptz PRIMARY KEY, cpu float8);
DO $$
DECLARE
	it int; k int; b int; tss timestamptz[]; cpus float8[]; x timestamptz; r record;
	bad bigint; want bigint; got bigint; t0 timestamptz := '__START__';
BEGIN
	PERFORM setseed(__SEED__);
	FOR it IN 1 .. 300 LOOP
		b := 1 + (random() * random() * 40)::int;
		tss := '{}'; cpus := '{}';
		FOR k IN 1 .. b LOOP
			IF random() < 0.7 THEN
				x := t0 + ((it * 10 + k) * 500000::bigint + (random() * 1000)::int) * interval '1 us';
			ELSE
				x := t0 + (random() * 4000)::bigint * 500000 * interval '1 us';
			END IF;
			IF random() < 0.1 THEN
				SELECT coalesce((SELECT s.ts FROM sent s ORDER BY random() LIMIT 1), x) INTO x;
			END IF;
			tss := tss || x; cpus := cpus || random();
		END LOOP;
		SELECT * INTO r FROM usage_add(__USER__, __TEST__, tss, cpus);
		IF r.status <> 'ok' THEN RAISE EXCEPTION 'call %: status %', it, r.status; END IF;
		FOR k IN 1 .. b LOOP
			INSERT INTO sent VALUES (tss[k], cpus[k]) ON CONFLICT DO NOTHING;
		END LOOP;
		IF r.above IS DISTINCT FROM ((SELECT s.cpu FROM sent s WHERE s.ts = tss[b]) > 0.5) THEN
			RAISE EXCEPTION 'call %: above wrong', it;
		END IF;
		CONTINUE WHEN it % 25 <> 0;
		SELECT count(*) INTO bad FROM (SELECT 1 FROM usage WHERE test_id = __TEST__
			GROUP BY ts HAVING count(*) > 1) d;
		IF bad > 0 THEN RAISE EXCEPTION 'call %: % samples stored twice', it, bad; END IF;
		SELECT count(*) INTO bad FROM sent s
			FULL JOIN (SELECT * FROM usage WHERE test_id = __TEST__) u ON u.ts = s.ts
			WHERE u.ts IS NULL OR s.ts IS NULL OR u.cpu_usage <> s.cpu;
		IF bad > 0 THEN RAISE EXCEPTION 'call %: % samples differ from what was sent', it, bad; END IF;
		IF (SELECT samples FROM tests WHERE id = __TEST__) <> (SELECT count(*) FROM sent) THEN
			RAISE EXCEPTION 'call %: samples count', it;
		END IF;
		IF (SELECT recent FROM tests WHERE id = __TEST__)
		   <> (SELECT count(*) FROM usage_recent WHERE test_id = __TEST__) THEN
			RAISE EXCEPTION 'call %: recent count', it;
		END IF;
		SELECT sum(CASE WHEN cpu > 0.5 THEN gap_us(coalesce(p, t0), ts) ELSE 0 END) INTO want
			FROM (SELECT ts, cpu, lag(ts) OVER (ORDER BY ts) p FROM sent) q;
		SELECT above_us INTO got FROM tests WHERE id = __TEST__;
		IF want <> got THEN RAISE EXCEPTION 'call %: above_us % want %', it, got, want; END IF;
		SELECT count(*) INTO bad FROM (
			SELECT c.first_ts <> c.ts[1] OR c.last_ts <> c.ts[cardinality(c.ts)]
			    OR c.ts <> (SELECT array_agg(e ORDER BY e) FROM unnest(c.ts) e)
			    OR c.first_ts <= lag(c.last_ts) OVER (ORDER BY c.last_ts) AS wrong
			FROM usage_chunk c WHERE c.test_id = __TEST__) q WHERE wrong;
		IF bad > 0 THEN RAISE EXCEPTION 'call %: % chunks misshapen or overlapping', it, bad; END IF;
		IF (SELECT array_agg(ts ORDER BY ts) FROM sent)
		   <> (SELECT array_agg(ts) FROM usage_read(__TEST__, NULL, 100000)) THEN
			RAISE EXCEPTION 'call %: read-back', it;
		END IF;
		SELECT s.ts INTO x FROM sent s ORDER BY random() LIMIT 1;
		IF (SELECT array_agg(ts ORDER BY ts) FROM (SELECT ts FROM sent WHERE ts > x ORDER BY ts LIMIT 37) q)
		   IS DISTINCT FROM (SELECT array_agg(ts) FROM usage_read(__TEST__, x, 37)) THEN
			RAISE EXCEPTION 'call %: read-back of 37 after %', it, x;
		END IF;
	END LOOP;
END $$;
SELECT count(*) FROM sent;
SQL
my %fill = (__USER__ => $uid, __TEST__ => $tq, __START__ => ts($S0), __SEED__ => ($seed % 1999) / 1000 - 0.999);
$prop =~ s/(__[A-Z]+__)/$fill{$1}/g;
my $n_sent = eval { $s->psql($prop) };
ok(defined $n_sent && $n_sent > 0, "packed: 300 random batches agree with what was sent ($@)")
	or diag $@;
is(chunks_sound($tq), 0, 'packed: random batches left sound chunks');

# --- gap_us (schema 3) against the exact definition ----------------------------------------

# gap_us(a, b) = max(0, b - a) in microseconds, exactly: 100 000 random pairs
# from microseconds to centuries apart, both orders, against the arithmetic
# of schema 1 (ts_us on each side).
is($s->psql(q{SELECT count(*) FROM (SELECT a, a + d AS b FROM (
		SELECT timestamptz '2000-01-01Z' + (random() * 1e16)::bigint * interval '1 microsecond' AS a,
		       (random() - 0.5) * power(10, (random() * 15)::int)::numeric
		           * interval '1 microsecond' AS d
		FROM generate_series(1, 100000)) p) q
	WHERE gap_us(a, b) IS DISTINCT FROM greatest(0, ts_us(b) - ts_us(a))}), 0,
	'gap_us: exact on 100 000 random pairs');
is($s->psql(q{SELECT gap_us('2024-03-31T00:00:00Z', '2024-04-01T00:00:00.000001Z')}), 86400000001,
	'gap_us: a day and a microsecond');
is($s->psql(q{SELECT gap_us('2024-01-01T00:00:01Z', '2024-01-01T00:00:00Z')}), 0,
	'gap_us: a negative gap counts 0');

$s->stop;
done_testing;
