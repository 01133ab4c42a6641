# Per-user limits and hostile text (SPEC 6.1): at most
# TRACKER_MAX_ACTIVE_TESTS active tests (429 too_many_active_tests), even
# when created all at once; a request rate per user on the authenticated
# routes (429 rate_limited with Retry-After), shared by the workers of a
# host, that 100 clients sampling every 0.5 s never meet at the default;
# sample timestamps at most one day ahead of the server's clock; strings
# that are not Unicode (lone surrogates) refused, naming their field; and
# the refusal of malformed settings.
use strict;
use warnings;
use utf8;

use Test::More;
use Time::HiRes qw(sleep time);
use GH::Stack qw(is_error is_json_ok ts now_us slurp wait_exit);

my $s = GH::Stack->new(workers => 2)->start;

# --- active tests ---------------------------------------------------------------

my $q = $s->user;
my @ids;
for my $n (1 .. 100) {
	my $r = $q->api(POST => 'test', {name => "t$n"});
	push @ids, $r->{json}{id} if $r->{status} == 201;
}
is(scalar @ids, 100, '100 active tests created');
my $r = $q->api(POST => 'test', {name => 'one too many'});
is_error($r, 429, 'too_many_active_tests', 'the 101st: 429 too_many_active_tests', field => '100');
is($s->psql("SELECT count(*) FROM tests WHERE user_id = " . $q->id), 100, '... and nothing stored');
my $other = $s->user;
is($other->api(POST => 'test', {})->{status}, 201, 'another user is not affected');
is_json_ok($q->api(POST => "test/$ids[0]/stop", {}), 200, 'stopping one ...');
is($q->api(POST => 'test', {name => 'in its place'})->{status}, 201, '... frees a place');
is_error($q->api(POST => 'test', {}), 429, 'too_many_active_tests', '... one place only');
# Stopped tests do not count, however many.
is($q->api(GET => "test/$ids[1]")->{status}, 200, 'reading is not limited by the quota');
is($q->api(POST => "test/$ids[1]/usage", {cpu_usage => 0.5})->{status}, 201,
	'neither is sending samples');

# Created all at once: never more than the limit.
my $c = $s->user;
$s->psql("INSERT INTO tests (user_id, name, description, threshold, start_time) "
	. "SELECT " . $c->id . ", 'pre', '', 0.5, now() FROM generate_series(1, 90)");
my @st = $s->parallel(16, sub { $c->api(POST => 'test', {name => "race$_[0]"})->{status} });
is(scalar(grep { ($_ // 0) == 201 } @st), 10, '16 creates at once with 90 active: exactly 10 pass')
	or diag "statuses: @st";
is(scalar(grep { ($_ // 0) == 429 } @st), 6, '... the other 6 are 429');
is($s->psql("SELECT count(*) FROM tests WHERE end_time IS NULL AND user_id = " . $c->id), 100,
	'... and the user has exactly 100 active tests');
my $plan = $s->psql("SET enable_seqscan = off; "
	. "EXPLAIN SELECT 1 FROM tests WHERE user_id = 1 AND end_time IS NULL");
like($plan, qr/tests_user_active/, 'the count uses the partial index of active tests')
	or diag $plan;

# --- timestamps ahead of the clock ------------------------------------------------

my $tid = $other->api(POST => 'test', {})->{json}{id};
my $DAY = 86400 * 1_000_000;
$r = $other->api(POST => "test/$tid/usage", {cpu_usage => 0.5, timestamp => ts(now_us() + $DAY)});
is($r->{status}, 201, 'a sample exactly one day ahead is stored');
$r = $other->api(POST => "test/$tid/usage", {cpu_usage => 0.5, timestamp => ts(now_us() + $DAY + 2e6)});
is_error($r, 400, 'invalid_field', 'one a day and 2 s ahead: 400', field => 'timestamp');
my $before = $s->psql("SELECT samples FROM tests WHERE id = $tid");
my $t0 = now_us() - 60e6;
$r = $other->api(POST => "test/$tid/usage", [
	(map { {cpu_usage => 0.1, timestamp => ts($t0 + $_ * 1e6)} } 1 .. 5),
	{cpu_usage => 0.1, timestamp => ts(now_us() + 2 * $DAY)},
]);
is_error($r, 400, 'invalid_field', 'a batch with one sample two days ahead: 400', field => '[5].timestamp');
is($s->psql("SELECT samples FROM tests WHERE id = $tid"), $before, '... and nothing of it stored');

# --- lone surrogates ---------------------------------------------------------------

for (['"\ud800"', 'a high surrogate alone'], ['"\udc00"', 'a low surrogate alone'],
    ['"x\ud83dy"', 'a high surrogate before a letter'],
    ['"\ud83d\ud83d"', 'two high surrogates']) {
	my ($json, $what) = @$_;
	$r = $other->api(POST => 'test', qq({"name":$json}), 'Content-Type' => 'application/json');
	is_error($r, 400, 'invalid_field', "a name of $what: 400", field => 'name');
}
$r = $s->api(POST => 'users', '{"username":"sam","password":"pw-\udfffxxxxxx"}');
is_error($r, 400, 'invalid_field', 'a password with a lone surrogate: 400, even on a public route',
	field => 'password');
$r = $other->api(POST => "test/$tid/usage", '[{"cpu_usage":0.5,"timestamp":"2026-01-01T00:00:00Z"},'
	. '{"cpu_usage":0.5,"timestamp":"\ud800"}]');
is_error($r, 400, 'invalid_field', 'in a batch: 400', field => 'timestamp');
$r = $other->api(POST => 'test', '{"name":"\ud83d\ude00 \u00e9"}');
is($r->{status}, 201, 'a surrogate pair is Unicode: 201');
my $got = $other->api(GET => "test/$r->{json}{id}")->{json}{name} // '';
is($got, "\x{1F600} \x{e9}", '... stored as exactly that character (U+1F600)');

# --- the request rate -----------------------------------------------------------------

# One request a second, 5 at once, for every user; two workers share it.
$s->restart_tracker(TRACKER_USER_RATE => 1, TRACKER_USER_BURST => 5);
my ($a1, $a2) = ($s->user, $s->user);
my (@codes, $retry);
my $t_start = time;
for (1 .. 30) {
	my $x = $a1->api(GET => 'test');
	push @codes, $x->{status};
	$retry //= $x if $x->{status} == 429;
}
my $elapsed = time - $t_start;
my $passed = grep { $_ == 200 } @codes;
ok($passed >= 5, "a flood of 30: the burst of 5 passes ($passed passed)");
ok($passed <= 5 + int($elapsed) + 1, sprintf '... and about one a second after it '
	. '(%d in %.1f s): the two workers count together', $passed, $elapsed);
is(scalar(grep { $_ != 200 && $_ != 429 } @codes), 0, '... the rest are 429');
ok($retry, 'a 429 came');
is_error($retry // {status => 0, headers => {}}, 429, 'rate_limited', '... as rate_limited');
my $after = ($retry->{headers} // {})->{'retry-after'} // '';
like($after, qr/^[1-9]\d*$/, "... with Retry-After in whole seconds ($after)");
is($a2->api(GET => 'test')->{status}, 200, 'another user is not affected');
is($s->api(GET => 'health')->{status}, 200, 'nor are public routes');
is($s->api(GET => 'test')->{status}, 401, 'without a token: 401 first (the limit is per user)');
sleep(($after || 1) + 0.2);
is($a1->api(GET => 'test')->{status}, 200, 'after Retry-After seconds a request passes again');

# The default: 100 clients of one user, each sending a sample every 0.5 s
# for 4 s and reading its test every second, never meet it.
$s->restart_tracker(TRACKER_USER_RATE => undef, TRACKER_USER_BURST => undef);
my $many = $s->user;
my @res = $s->parallel(100, sub {
	my $i = shift;
	my %n;
	my $id = $many->api(POST => 'test', {name => "client $i"});
	$n{$id->{status}}++;
	$id = $id->{json}{id} // return \%n;
	my $start = time;
	for my $k (1 .. 8) {
		my $due = $start + $k * 0.5;
		sleep $due - time if $due > time;
		$n{ $many->api(POST => "test/$id/usage", {cpu_usage => 0.5})->{status} }++;
		$n{ $many->api(GET => "test/$id")->{status} }++ if $k % 2 == 0;
	}
	$n{ $many->api(POST => "test/$id/stop", {})->{status} }++;
	return \%n;
});
my %all;
for my $n (grep { ref } @res) { $all{$_} += $n->{$_} for keys %$n }
diag 'statuses of 100 clients at the default rate: ' . join ' ', map { "$_=$all{$_}" } sort keys %all;
is($all{429} // 0, 0, '100 clients sampling every 0.5 s: not one 429');
is(($all{201} // 0) + ($all{200} // 0), 100 * (1 + 8 + 4 + 1), '... every request answered 2xx');

# --- settings ---------------------------------------------------------------------------

sub refuses {
	my ($env, $want) = @_;
	my ($pid, $log) = $s->spawn_tracker({TRACKER_LISTEN => $s->dir . '/other.sock', %$env}, 'serve');
	my $st = wait_exit($pid, 10);
	my $code = defined $st ? $st >> 8 : undef;
	unless (defined $st) { kill 'TERM', $pid; waitpid $pid, 0 }
	my $out = slurp($log) // '';
	my ($k) = keys %$env;
	ok(defined $code && $code != 0 && $out =~ $want, "serve refuses $k=$env->{$k}")
		or diag $out;
}
refuses({TRACKER_MAX_ACTIVE_TESTS => 0}, qr/TRACKER_MAX_ACTIVE_TESTS=0: want a number from 1/);
refuses({TRACKER_MAX_ACTIVE_TESTS => 'lots'}, qr/TRACKER_MAX_ACTIVE_TESTS=lots/);
refuses({TRACKER_USER_RATE => -1}, qr/TRACKER_USER_RATE=-1: want requests a second from 0/);
refuses({TRACKER_USER_RATE => '10/s'}, qr/TRACKER_USER_RATE=10\/s/);
refuses({TRACKER_USER_BURST => 0}, qr/TRACKER_USER_BURST=0: want a number from 1/);

$s->stop;
done_testing;
