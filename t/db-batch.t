# The worker's shared batch (fcgi/pipeline.c): samples of many requests
# share one transaction. A statement that fails inside it — a constraint
# violation, a cancelled statement — gets its own error, and every other
# statement of the batch is committed exactly once; and a sample is
# answered when its batch commits, not when a slow read sent after it in
# the same pipeline finishes.
#
# One worker, one database connection: requests queue behind one another.
# To make many share a batch, the test holds a test's row from psql, so
# that one sample's usage_add waits on the connection while the others
# queue; letting go of the row sends the whole queue as the next batch.
# The database proves they shared it: a sequence counts every attempt to
# insert a sample (rolled back or not, nextval is not undone), and rows
# inserted by one transaction share its xmin.
use strict;
use warnings;

use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);
use GH::Stack qw(is_error ts parse_ts json_encode json_decode);

my $K = 8;    # good requests in each batch
my $s = GH::Stack->new(workers => 1,
	env => {TRACKER_DB_CONNECTIONS => 1, TRACKER_USER_RATE => 0})->start;
my $slow = $s->slow;
my $u = $s->user;
my $T0 = parse_ts('2024-01-01T00:00:00Z');
my $seq = 0;

# new_tests($n) → ids of $n fresh tests, increasing.
sub new_tests {
	return map {
		my $r = $u->api(POST => 'test', {name => "b$_", start_time => ts($T0)});
		$r->{status} == 201 or BAIL_OUT("POST test: $r->{status} $r->{content}");
		$r->{json}{id};
	} 1 .. shift;
}

# post($test, $cpu) → {status, json} of one sample with a timestamp of its own.
sub post {
	my ($test, $cpu) = @_;
	my $r = $u->api(POST => "test/$test/usage",
		{cpu_usage => $cpu, timestamp => ts($T0 + ++$seq * 1_000_000)});
	return {map { $_ => $r->{$_} } qw(status json content headers)};
}

# bg($code) → a child running $code (its result, JSON-encodable, in a file);
# bg_done($h): has it finished; bg_wait($h) → its result.
sub bg {
	my ($code) = @_;
	my $out = $s->dir . "/bg-$$-" . ++$seq . '.json';
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		$s->reconnect;
		my $r = eval { $code->() };
		if (open my $fh, '>', $out) { print $fh json_encode([$r]); close $fh }
		POSIX::_exit(0);
	}
	return {pid => $pid, out => $out};
}
sub bg_done {
	my ($h) = @_;
	return 1 if $h->{reaped};
	return 0 unless waitpid($h->{pid}, POSIX::WNOHANG()) == $h->{pid};
	return $h->{reaped} = 1;
}
sub bg_wait {
	my ($h) = @_;
	waitpid $h->{pid}, 0 unless $h->{reaped};
	$h->{reaped} = 1;
	open my $fh, '<', $h->{out} or return undef;
	my $got = eval { json_decode(do { local $/; <$fh> }) };
	return $got ? $got->[0] : undef;
}

# wait_sql($what, $sql): poll until $sql answers a true value.
sub wait_sql {
	my ($what, $sql) = @_;
	my $deadline = time + 10 * $slow;
	while (time < $deadline) {
		my $v = $s->psql($sql);
		return ok(1, $what) if $v && $v ne 'f';
		sleep 0.02;
	}
	return ok(0, $what);
}

# hold($name, $sql) → a psql session that runs $sql and then sleeps,
# keeping its locks until release($name).
my %holder;
sub hold {
	my ($name, $sql) = @_;
	$holder{$name} = $s->psql_async("/* gh-hold-$name-end */ BEGIN; $sql; SELECT pg_sleep(60); COMMIT;");
	wait_sql("psql holds $name", "SELECT count(*) FROM pg_stat_activity "
		. "WHERE query LIKE '%gh-hold-$name-end%' AND wait_event = 'PgSleep'");
}
sub holder_pid {
	return $s->psql("SELECT pid FROM pg_stat_activity WHERE query LIKE '%gh-hold-$_[0]-end%' "
		. 'AND pid <> pg_backend_pid()');
}
sub release {
	my ($name) = @_;
	$s->psql("SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
		. "WHERE query LIKE '%gh-hold-$name-end%' AND pid <> pg_backend_pid()");
	waitpid delete $holder{$name}, 0;
}

# The worker's backend (the revocation listener has one too; it never
# waits on a lock) waits on a lock that $name holds.
sub wait_blocked_by {
	my ($name, $what) = @_;
	my $pid = holder_pid($name);
	wait_sql($what, "SELECT count(*) FROM pg_stat_activity a "
		. "WHERE a.application_name = 'grasshopper-tracker' "
		. "AND $pid = ANY (pg_blocking_pids(a.pid))");
}
sub tracker_backend {
	return $s->psql("SELECT pid FROM pg_stat_activity WHERE application_name = "
		. "'grasshopper-tracker' AND wait_event_type = 'Lock'");
}

# queue_behind($w, @requests): hold test $w's row, send a sample to it
# (it waits on the connection), then send @requests (code refs, each in a
# child) and give them time to queue behind it. → ($w's child, children).
sub queue_behind {
	my ($w, @requests) = @_;
	hold("row$w", "SELECT 1 FROM tests WHERE id = $w FOR UPDATE");
	my $first = bg(sub { post($w, 0.5) });
	wait_blocked_by("row$w", "a sample to test $w waits on the connection");
	my @kids = map { my $c = $_; bg($c) } @requests;
	# Every request is in the worker's queue within this (they need no
	# database before it: the token is cached); the checks below prove
	# that they shared one batch.
	sleep 0.8 * $slow;
	return ($first, @kids);
}

# Samples stored for each test, and distinct xmins over them.
sub stored { $s->psql("SELECT count(*) FROM usage WHERE test_id = $_[0]") }
sub xmins {
	my $ids = join ',', @_;
	return $s->psql("SELECT count(DISTINCT xmin::text) FROM usage_recent WHERE test_id IN ($ids)");
}

# Count every attempt to insert a sample; refuse cpu_usage 0.375. The
# schema refuses nothing usage_add sends it (the handler checks first), so
# the test adds a rule of its own, as any later constraint would.
my $role = $s->service_role;
$s->psql($_) for
	'CREATE SEQUENCE gh_attempts',
	"GRANT USAGE ON SEQUENCE gh_attempts TO $role",
	q{CREATE FUNCTION gh_attempt() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM nextval('gh_attempts'); RETURN NEW; END $$},
	'CREATE TRIGGER gh_attempt BEFORE INSERT ON usage_recent '
		. 'FOR EACH ROW EXECUTE FUNCTION gh_attempt()',
	'ALTER TABLE usage_recent ADD CONSTRAINT gh_refuses CHECK (cpu_usage <> 0.375) NOT VALID';
# attempts → inserts tried since the last call (the call's own nextval not
# counted).
my $last_attempt = $s->psql("SELECT nextval('gh_attempts')");
sub attempts {
	my $v = $s->psql("SELECT nextval('gh_attempts')");
	my $n = $v - $last_attempt - 1;
	$last_attempt = $v;
	return $n;
}

# check_batch($what, \@answers, \@tests, $x, [$status, $error], $tries):
# after a batch in which the sample to test $x failed, the answers (the
# sample that held the connection first, $x's last) and the database.
sub check_batch {
	my ($what, $answers, $tests, $x, $error, $tries) = @_;
	my @r = @$answers;
	my $rx = pop @r;
	is($r[0]{status}, 201, 'the sample that held the connection: 201');
	is_error($rx, @$error, "the $what sample: its own error, $error->[0]");
	is_deeply([map { $_->{status} } @r[1 .. $K]], [(201) x $K],
		"the $K others in its batch: 201 each (stored by that request)");
	is_deeply([map { stored($_) } @$tests], [(1) x $K], '... each stored exactly once');
	is($u->api(GET => "test/$tests->[0]")->{json}{samples}, 1, "... and the test's count agrees");
	is(stored($x), 0, "the $what sample is not stored");
	is(attempts(), $tries, "they shared one batch: each of the $K was tried twice (rolled back once)");
	is(xmins(@$tests), 1, "... and the $K committed in one transaction");
}

# --- a constraint violation inside the batch ----------------------------------

{
	# The failing sample's test is created last: the batch runs in test
	# id order, so every other sample runs (and is rolled back) first.
	my ($w, @a) = new_tests($K + 2);
	my $x = pop @a;
	my ($first, @kids) = queue_behind($w, (map { my $t = $_; sub { post($t, 0.5) } } @a),
		sub { post($x, 0.375) });
	release("row$w");
	my @r = map { bg_wait($_) } $first, @kids;
	# Tried: the first sample, the 8 (rolled back), the refused one, the 8.
	check_batch('refused', \@r, \@a, $x, [500, 'internal'], 1 + $K + 1 + $K);
}

# --- a cancelled statement inside the batch -----------------------------------

{
	my ($w, @a) = new_tests($K + 2);
	my $x = pop @a;
	hold("row$x", "SELECT 1 FROM tests WHERE id = $x FOR UPDATE");
	my ($first, @kids) = queue_behind($w, (map { my $t = $_; sub { post($t, 0.5) } } @a),
		sub { post($x, 0.5) });
	release("row$w");
	wait_blocked_by("row$x", "the batch waits at test ${x}'s sample, after the $K others ran");
	my $backend = tracker_backend();
	ok($s->psql("SELECT pg_cancel_backend($backend)") eq 't', 'its statement cancelled (pg_cancel_backend)');
	my @r = map { bg_wait($_) } $first, @kids;
	release("row$x");
	# Tried: the first sample, the 8 (rolled back), the 8; the cancelled
	# one never reached its insert.
	check_batch('cancelled', \@r, \@a, $x, [503, 'unavailable'], 1 + $K + $K);
	is(post($x, 0.5)->{status}, 201, 'the cancelled test takes samples again');
}

# --- a committed sample does not wait for a slow read -------------------------

{
	my ($w, @a) = new_tests($K + 2);
	my $z = pop @a;
	is(post($z, 0.5)->{status}, 201, 'a sample to read back');
	# The read of samples needs usage_chunk; the samples do not.
	hold('chunks', 'LOCK TABLE usage_chunk IN ACCESS EXCLUSIVE MODE');
	# The samples queue first, the read after them: the read is what the
	# pipeline reads last, so its thread leads it, and no sample's thread
	# is left reading for others.
	my ($first, @kids) = queue_behind($w, (map { my $t = $_; sub { post($t, 0.5) } } @a),
		sub { sleep 0.2 * $slow; my $r = $u->api(GET => "test/$z/usage"); {status => $r->{status}} });
	my $read = pop @kids;
	release("row$w");
	my @r = map { bg_wait($_) } $first, @kids;
	my $read_done = bg_done($read);
	my $still_blocked = $s->psql("SELECT count(*) FROM pg_stat_activity "
		. "WHERE application_name = 'grasshopper-tracker' AND wait_event_type = 'Lock'");
	release('chunks');
	my $rr = bg_wait($read);
	is_deeply([map { $_->{status} } @r], [(201) x ($K + 1)], "the $K samples: 201 each");
	ok(!$read_done && $still_blocked,
		'... answered while the read sent after them in the same pipeline still waited');
	is($rr->{status}, 200, 'the read: 200 once the table is free');
	is(xmins(@a), 1, "the $K shared one batch (one transaction)");
}

$s->stop;
done_testing;
