# Faults: the database going away and coming back, workers dying, and a
# graceful stop with a request in flight (SPEC 3 and 5).
use strict;
use warnings;

use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);
use GH::Stack qw(is_error is_json_ok ts parse_ts json_decode json_encode slurp alive wait_until);

# A request waits TRACKER_DB_WAIT for a database that went away; 1 s here
# keeps the outage rounds short (the section "the database comes back"
# uses a longer wait).
my $s = GH::Stack->new(workers => 2, env => {TRACKER_DB_WAIT => 1})->start;
my $u = $s->user;
my $tid = $u->api(POST => 'test', {start_time => '2024-01-01T00:00:00Z'})->{json}{id};
my $S0 = parse_ts('2024-01-01T00:00:00Z');
sub sample { {cpu_usage => $_[1], timestamp => ts($S0 + $_[0] * 1_000_000)} }
$u->api(POST => "test/$tid/usage", [map { sample($_, 0.6) } 1 .. 10]);

sub counts {
	return $s->psql('SELECT (SELECT count(*) FROM users) || \' \' || '
		. '(SELECT count(*) FROM tests) || \' \' || (SELECT count(*) FROM usage)');
}
sub log_text { slurp($s->dir . '/tracker.log') // '' }

# --- PostgreSQL stops -------------------------------------------------------------------

my @w0 = $s->worker_pids;
is(scalar @w0, 2, 'two workers');
my $counts = counts();
my $sample_count = $u->api(GET => "test/$tid")->{json}{samples};
is($sample_count, 10, '10 samples before the outage');

ok($s->stop_postgres, 'PostgreSQL stopped');
my $t0 = time;
my $r = $s->api(GET => 'health');
is($r->{status}, 503, 'health: 503 while the database is down');
# Not scaled: it tells an answer at once from one after TRACKER_DB_WAIT (1 s).
cmp_ok(time - $t0, '<', 0.9, '... at once: health checks never wait for the database');
like($r->{headers}{'content-type'} // '', qr{^application/json; charset=utf-8$}i, '... as JSON');

my @down = (
	['GET', "test/$tid", undef, 'get a test'],
	['GET', 'test', undef, 'list tests'],
	['POST', 'test', {name => 'during-outage'}, 'create a test'],
	['POST', "test/$tid/usage", [map { sample($_, 0.9) } 100 .. 199], 'post a batch'],
	['POST', "test/$tid/usage", sample(300, 0.9), 'post a sample'],
	['GET', "test/$tid/usage", undef, 'read samples'],
	['POST', "test/$tid/stop", {}, 'stop the test'],
);
for my $round (1 .. 2) {    # twice, so both workers meet the outage
	for my $c (@down) {
		my ($m, $p, $body, $what) = @$c;
		$t0 = time;
		$r = $u->api($m, $p, $body);
		my $waited = time - $t0;
		is_error($r, 503, 'unavailable', "DB down: $what: 503 unavailable ($round)");
		cmp_ok($waited, '>=', 0.9, "... after waiting TRACKER_DB_WAIT (1 s) for it ($round)")
			if $round == 1;
		ok(defined $r->{headers}{'retry-after'}, "DB down: $what: Retry-After ($round)");
	}
	is_error($s->register("ghost$round", 'ghost-password'), 503, 'unavailable',
		"DB down: register: 503 ($round)");
	is_error($s->login($u->username, $u->password), 503, 'unavailable',
		"DB down: auth: 503 ($round)");
}
is_deeply([$s->worker_pids], \@w0, 'DB down: the same workers are still running');

ok($s->start_postgres, 'PostgreSQL started again');
my $st;
wait_until(15, sub { ($st = $s->api(GET => 'health')->{status}) == 200 }, 0.1);
is($st, 200, 'health: 200 again after the restart');
my @ok = map { $u->api(GET => "test/$tid")->{status} } 1 .. 10;
is_deeply(\@ok, [(200) x 10], 'every worker reconnected (10 requests, all 200)');
is($s->login($u->username, $u->password)->{status}, 200, 'auth works again');
is(counts(), $counts, 'nothing of the refused requests was stored');
$r = $u->api(GET => "test/$tid");
is($r->{json}{samples}, 10, '... the test has its 10 samples');
ok($r->{json}{active}, '... and is still active');
is($s->login('ghost1', 'ghost-password')->{status}, 401, '... no user ghost1');
is($s->register('ghost1', 'ghost-password')->{status}, 201, '... and ghost1 can register now');
$r = $u->api(POST => "test/$tid/usage", [map { sample($_, 0.9) } 100 .. 199]);
is_deeply([$r->{status}, @{ $r->{json} || {} }{qw(received stored)}], [200, 100, 100],
	'the batch refused during the outage is all new now');
is_deeply([$s->worker_pids], \@w0, 'the same workers served it all');

# --- a worker dies ----------------------------------------------------------------------------

my $before = length log_text();
my $victim = $s->kill_worker('KILL');
my @w1 = $s->wait_workers(2, 5);
is(scalar @w1, 2, 'SIGKILLed worker: the pool is back to 2 within 5 s');
ok(!grep({ $_ == $victim } @w1), '... with a new worker in its place');
like(substr(log_text(), $before), qr/\b$victim\b/, '... and the master logged it');
@ok = map { $u->api(GET => "test/$tid")->{status} } 1 .. 20;
is_deeply(\@ok, [(200) x 20], 'the following 20 requests all succeed');

$before = length log_text();
kill 'KILL', @w1;
ok($s->wait_gone(5, @w1), 'both workers SIGKILLed');
my @w2 = $s->wait_workers(2, 5);
is(scalar @w2, 2, 'both workers SIGKILLed: back to 2');
ok(!grep({ my $p = $_; grep { $_ == $p } @w1 } @w2), '... both replaced');
wait_until(5, sub { ($st = $s->api(GET => 'health')->{status}) == 200 });
is($st, 200, '... and answering');
@ok = map { $u->api(GET => "test/$tid")->{status} } 1 .. 20;
is_deeply(\@ok, [(200) x 20], 'the following 20 requests all succeed');

my $w = $s->kill_worker('ABRT');
@w2 = $s->wait_workers(2, 5);
ok(@w2 == 2 && !grep({ $_ == $w } @w2), 'a worker killed by SIGABRT is replaced');

# SIGTERM to one worker (not the master): it leaves quietly (its idle threads
# are woken after a second) and the master replaces it; the rest serve on.
$before = length log_text();
$t0 = time;
$w = $s->kill_worker('TERM');
my $gone = time - $t0;
ok(!alive($w), sprintf('a worker sent SIGTERM exits (in %.1f s)', $gone));
cmp_ok($gone, '<', $s->scale(4), '... within a few seconds, though idle');
@w2 = $s->wait_workers(2, 5);    # the master has reaped it (and logged it) by then
like(substr(log_text(), $before), qr/worker $w exited with status 0/, '... with status 0');
ok(@w2 == 2 && !grep({ $_ == $w } @w2), '... and is replaced');
@ok = map { $u->api(GET => "test/$tid")->{status} } 1 .. 20;
is_deeply(\@ok, [(200) x 20], 'the following 20 requests all succeed');

# --- SIGTERM with a request in flight ---------------------------------------------------------------

# Hold every table locked so the next usage POST waits inside a worker.
my $tables = join ', ', split /\n/, $s->psql(
	"SELECT quote_ident(table_name) FROM information_schema.tables "
	. "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'");
my $locker = $s->psql_async("BEGIN; LOCK TABLE $tables IN ACCESS EXCLUSIVE MODE; "
	. "SELECT pg_sleep(3); COMMIT;");
my $locked = wait_until(10, sub {
	$s->psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(3)%' "
		. "AND state = 'active' AND pid <> pg_backend_pid()") });
ok($locked, 'tables locked by another session');

my $out = $s->dir . '/inflight.json';
my $child = fork // die "fork: $!";
if ($child == 0) {
	$s->reconnect;
	my $r = $u->api(POST => "test/$tid/usage", [map { sample($_, 0.7) } 500 .. 999]);
	open my $fh, '>', $out;
	print $fh json_encode({status => $r->{status}, json => $r->{json}});
	close $fh;
	POSIX::_exit(0);
}
my $waiting = wait_until(10, sub {
	$s->psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'") }, 0.02);
ok($waiting, 'a worker is waiting on the lock (request in flight)');
my @workers = $s->worker_pids;
$t0 = time;
ok($s->signal_tracker('TERM'), 'SIGTERM sent to the master');
waitpid $child, 0;
my $res = eval { json_decode(slurp($out)) } || {};
is($res->{status}, 200, 'the in-flight request completed (200)');
is_deeply([@{ $res->{json} || {} }{qw(received stored)}], [500, 500], '... and stored its 500 samples');
my $exit = $s->wait_tracker(20);
ok(defined $exit, sprintf 'the master exited %.1f s after SIGTERM', time - $t0);
is($exit, 0, 'the master exited with status 0');
ok($s->wait_gone(0.2, @workers), 'no worker is left');
waitpid $locker, 0;

$s->start_tracker;
ok($s->wait_healthy, 'the tracker starts again');
is($u->api(GET => "test/$tid")->{json}{samples}, 10 + 100 + 500, 'all samples are there');

# --- the database comes back while requests wait -------------------------------------------------

# With TRACKER_DB_WAIT=20, a restart of PostgreSQL costs the requests that
# meet it some latency, not an error: they wait for it and succeed.
$s->restart_tracker(TRACKER_DB_WAIT => 20);
ok($s->wait_healthy, 'tracker restarted with TRACKER_DB_WAIT=20');
ok($s->stop_postgres, 'PostgreSQL stopped');
my %waiting;
for my $c (['sample', POST => "test/$tid/usage", sample(2000, 0.9)],
	   ['batch', POST => "test/$tid/usage", [map { sample($_, 0.2) } 2001 .. 2050]],
	   ['read', GET => "test/$tid"],
	   ['create', POST => 'test', {name => 'made-during-restart'}]) {
	my ($name, @req) = @$c;
	my $file = $s->dir . "/wait-$name.json";
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		$s->reconnect;
		my $t = time;
		my $r = $u->api(@req);
		open my $fh, '>', $file;
		print $fh json_encode({status => $r->{status}, json => $r->{json},
			secs => time - $t});
		close $fh;
		POSIX::_exit(0);
	}
	$waiting{$name} = [$pid, $file];
}
my $outage = $s->scale(1.5);    # the requests are in, waiting
sleep $outage;
is($s->api(GET => 'health')->{status}, 503, 'health says 503 meanwhile');
ok($s->start_postgres, "PostgreSQL started $outage s later");
my %got;
for my $name (sort keys %waiting) {
	waitpid $waiting{$name}[0], 0;
	$got{$name} = eval { json_decode(slurp($waiting{$name}[1])) } || {};
	cmp_ok($got{$name}{secs} // 0, '>=', 1, "$name: waited for the database");
}
is_deeply([$got{sample}{status}, $got{sample}{json}{above_threshold}], [201, JSON::PP::true()],
	'sample: 201 once the database was back');
is_deeply([$got{batch}{status}, @{ $got{batch}{json} || {} }{qw(received stored)}], [200, 50, 50],
	'batch: 200, all 50 stored');
is($got{read}{status}, 200, 'read: 200');
is($got{create}{status}, 201, 'create: 201');
$r = $u->api(GET => "test/$tid");
is($r->{json}{samples}, 10 + 100 + 500 + 1 + 50, 'the test has every sample, once');
is($s->psql("SELECT count(*) FROM tests WHERE name = 'made-during-restart'"), 1,
	'the test created during the restart exists once');

$s->stop;
done_testing;
