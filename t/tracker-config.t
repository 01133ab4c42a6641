# grasshopper-tracker's command line and environment (SPEC 5,
# docs/architecture.md): refusing bad configuration, the secret file, the
# token lifetime, the worker count, the socket, init-db.
use strict;
use warnings;

use File::Copy ();
use File::Temp ();
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(sleep time);
use GH::Stack qw(is_json_ok slurp free_port wait_until wait_exit);

my $s = GH::Stack->new->start;
my $u = $s->user;

# run(\%env, $timeout, @args): the exit code, or undef if still running
# after $s->scale($timeout) seconds (then it is stopped); and the output.
sub run {
	my ($env, $timeout, @args) = @_;
	my ($pid, $log) = $s->spawn_tracker($env, @args);
	my $st = wait_exit($pid, $timeout);
	my $code = defined $st ? $st >> 8 || ($st & 127 ? 128 + ($st & 127) : 0) : undef;
	unless (defined $st) {
		kill 'TERM', $pid;
		waitpid $pid, 0;
	}
	return ($code, slurp($log) // '');
}

# --- commands ------------------------------------------------------------------------

my ($code, $out) = run({}, 5, 'version');
is($code, 0, 'version: exit 0');
like($out, qr/\d+\.\d+\.\d+/, 'version: prints a version');
($code) = run({}, 5);
ok($code, 'no command: non-zero exit');
($code) = run({}, 5, 'frobnicate');
ok($code, 'unknown command: non-zero exit');

# --- refusing to start ------------------------------------------------------------------------

my $sock = $s->dir . '/other.sock';
# write_secret($name, $secret): a secret file (newline-terminated, 0600).
sub write_secret {
	my ($name, $secret) = @_;
	my $path = $s->dir . "/$name";
	open my $fh, '>', $path or die "$path: $!";
	print $fh "$secret\n";
	close $fh;
	chmod 0600, $path;
	return $path;
}
# SPEC 6.1: the example secret (refused forever, from either source) and
# secrets of fewer than 16 distinct bytes.
my $example = 'change-me-to-the-output-of-openssl-rand-hex-32';
my $example_file = write_secret('example-secret', $example);
my $distinct15 = join('', 'a' .. 'o') x 3;
my $distinct15_file = write_secret('secret15', $distinct15);
my @secrets = ($example, 'q' x 64, $distinct15);
for my $c (
    [{TRACKER_JWT_SECRET => undef}, 'no secret', qr/secret/i],
    [{TRACKER_JWT_SECRET => ''}, 'an empty secret', qr/secret/i],
    [{TRACKER_JWT_SECRET => 's' x 31}, 'a 31-byte secret', qr/secret/i],
    [{TRACKER_JWT_SECRET => $example}, 'the secret .env.example once shipped',
	qr/^grasshopper-tracker\[\d+\]: error: the JWT secret is the example's "change-me\.\.\." placeholder; generate one/m],
    [{TRACKER_JWT_SECRET => undef, TRACKER_JWT_SECRET_FILE => $example_file},
	'the example secret from TRACKER_JWT_SECRET_FILE', qr/the example's "change-me/],
    [{TRACKER_JWT_SECRET => 'q' x 64}, 'a 64-byte secret of one byte',
	qr/^grasshopper-tracker\[\d+\]: error: the JWT secret has 1 distinct bytes; it must have at least 16/m],
    [{TRACKER_JWT_SECRET => $distinct15}, 'a 45-byte secret of 15 distinct bytes',
	qr/the JWT secret has 15 distinct bytes/],
    [{TRACKER_JWT_SECRET => undef, TRACKER_JWT_SECRET_FILE => $distinct15_file},
	'15 distinct bytes from TRACKER_JWT_SECRET_FILE', qr/the JWT secret has 15 distinct bytes/],
    [{TRACKER_JWT_SECRET => undef, TRACKER_JWT_SECRET_FILE => '/nonexistent/secret'},
	'a missing secret file', qr/secret/i],
    [{TRACKER_WORKERS => 0}, 'TRACKER_WORKERS=0', qr/WORKERS/],
    [{TRACKER_WORKERS => 257}, 'TRACKER_WORKERS=257', qr/WORKERS/],
    [{TRACKER_WORKERS => 'two'}, 'TRACKER_WORKERS=two', qr/WORKERS/],
    [{TRACKER_TOKEN_TTL => 'forever'}, 'TRACKER_TOKEN_TTL=forever', qr/TTL/],
    [{TRACKER_TOKEN_TTL => '-5'}, 'TRACKER_TOKEN_TTL=-5', qr/TTL/],
    [{TRACKER_TOKEN_TTL => '10x'}, 'TRACKER_TOKEN_TTL=10x', qr/TTL/],
    [{TRACKER_LISTEN => '127.0.0.1:99999'}, 'TRACKER_LISTEN with a bad port', qr/LISTEN/],
    [{TRACKER_THREADS => 0}, 'TRACKER_THREADS=0', qr/THREADS/],
    [{TRACKER_THREADS => 257}, 'TRACKER_THREADS=257', qr/THREADS/],
    [{TRACKER_DB_CONNECTIONS => 0}, 'TRACKER_DB_CONNECTIONS=0', qr/DB_CONNECTIONS/],
    [{TRACKER_DB_CONNECTIONS => 65}, 'TRACKER_DB_CONNECTIONS=65', qr/DB_CONNECTIONS/],
    [{TRACKER_DB_WAIT => 601}, 'TRACKER_DB_WAIT=601', qr/DB_WAIT/],
    [{TRACKER_DB_WAIT => 'soon'}, 'TRACKER_DB_WAIT=soon', qr/DB_WAIT/],
    [{TRACKER_SCHED => 'fifo'}, 'TRACKER_SCHED=fifo', qr/TRACKER_SCHED=fifo: want batch or other/],
    ) {
	my ($env, $what, $msg) = @$c;
	unlink $sock;
	my ($code, $out) = run({TRACKER_LISTEN => $sock, %$env}, 10, 'serve');
	ok(defined $code && $code != 0, "serve refuses $what (exit " . ($code // 'none') . ')');
	like($out, $msg, '... and says why');
	ok(!-e $sock, '... without opening its socket');
	is(scalar(grep { index($out, $_) >= 0 } @secrets), 0, '... and never prints the secret');
	is(scalar(() = $out =~ /\n/g), 1, '... in one line');
}

# 32 bytes of 16 distinct values are enough; TRACKER_LISTEN as HOST:PORT.
my $port = free_port();
my ($pid, $log) = $s->spawn_tracker({TRACKER_JWT_SECRET => join('', 'a' .. 'p') x 2,
	TRACKER_LISTEN => "127.0.0.1:$port"}, 'serve');
my $conn = wait_until(10, sub {
	IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp') });
ok($conn, 'a 32-byte secret of 16 distinct bytes is accepted; TRACKER_LISTEN=127.0.0.1:PORT listens');
close $conn if $conn;
kill 'TERM', $pid;
waitpid $pid, 0;
is($?, 0, '... and it stops with status 0 on SIGTERM');

# --- the running stack's settings ----------------------------------------------------------------

my $mode = (stat $s->dir . '/tracker.sock')[2];
is(sprintf('%04o', ($mode // 0) & 07777), '0660', 'the unix socket has mode 0660');

# TRACKER_SCHED: every thread of every worker under SCHED_BATCH by default
# (policy 3 in /proc/.../stat), the default policy (0) with "other".
sub policies {
	my %p;
	for my $w ($s->worker_pids) {
		for my $st (glob "/proc/$w/task/*/stat") {
			my ($rest) = (slurp($st) // '') =~ /\) (.*)/s or next;
			$p{(split ' ', $rest)[38]}++;
		}
	}
	return join ',', sort keys %p;
}
is(policies(), '3', 'every worker thread runs under SCHED_BATCH by default');
$s->restart_tracker(TRACKER_SCHED => 'other');
is(policies(), '0', 'TRACKER_SCHED=other: the default policy');
is($s->api(GET => 'health')->{status}, 200, '... serving');

$s->restart_tracker(TRACKER_WORKERS => 3);
is(scalar(my @w3 = $s->worker_pids), 3, 'TRACKER_WORKERS=3 gives 3 workers');
is($s->api(GET => 'health')->{status}, 200, '... serving');

for my $c (['90', 90], ['15m', 900], ['2h', 7200], ['1d', 86400], ['30d', 30 * 86400]) {
	my ($ttl, $secs) = @$c;
	$s->restart_tracker(TRACKER_TOKEN_TTL => $ttl);
	my $r = $s->login($u->username, $u->password);
	my $cl = $s->jwt_claims($r->{json}{token} // '') || {};
	is(($cl->{exp} // 0) - ($cl->{iat} // 0), $secs, "TRACKER_TOKEN_TTL=$ttl: $secs s");
}

# The secret from a file, one trailing newline ignored.
my $secret2 = 'f' x 40 . 'secret-from-file-0123456789';
my $file = $s->dir . '/secret2';
open my $fh, '>', $file or die;
print $fh "$secret2\n";
close $fh;
chmod 0600, $file;
$s->restart_tracker(TRACKER_JWT_SECRET => undef, TRACKER_JWT_SECRET_FILE => $file);
my $now = int time;
my %claims = (sub => "" . $u->id, iat => $now, exp => $now + 600,
	jti => $s->token_row($u->id, $now + 600));
is($s->as($s->jwt(\%claims, key => $secret2))->api(GET => 'test')->{status}, 200,
	'TRACKER_JWT_SECRET_FILE: tokens signed with the file\'s secret are accepted');
is($s->as($s->jwt(\%claims, key => "$secret2\n"))->api(GET => 'test')->{status}, 401,
	'... the trailing newline is not part of the secret');
is($s->as($s->jwt(\%claims))->api(GET => 'test')->{status}, 401,
	'... tokens signed with the old secret are refused');
my $tok = $s->login($u->username, $u->password)->{json}{token} // '';
is($s->as($tok)->api(GET => 'test')->{status}, 200, '... and /auth signs with it');

# A database that cannot be reached: the pool runs and answers 503.
$s->restart_tracker(TRACKER_DATABASE_URL => 'host=' . $s->dir . '/nowhere dbname=x user=postgres '
	. 'connect_timeout=2');
my $r = $s->api(GET => 'health');
is($r->{status}, 503, 'unreachable database at start: health 503');
is(scalar(my @w2 = $s->worker_pids), 2, '... and the workers keep running');
$s->restart_tracker;
is($s->api(GET => 'health')->{status}, 200, 'back to the real database: 200');

# --- init-db is idempotent -------------------------------------------------------------------------

my $schema = $s->psql("SELECT string_agg(table_name || ':' || table_type, ',' ORDER BY table_name) "
	. "FROM information_schema.tables WHERE table_schema = 'public'");
is($s->init_db, 0, 'init-db again: exit 0');
is($s->init_db, 0, 'init-db a third time: exit 0');
is($s->psql("SELECT string_agg(table_name || ':' || table_type, ',' ORDER BY table_name) "
	. "FROM information_schema.tables WHERE table_schema = 'public'"), $schema,
	'... the schema did not change');
is($s->login($u->username, $u->password)->{status}, 200, '... and the data is intact');
cmp_ok($s->psql("SELECT count(*) FROM information_schema.views WHERE table_schema = 'public'"),
	'>=', 2, 'schema provides views for admins');

# --- init-db upgrades: schema 4 packs the samples already stored -------------------------
# (t/schema.t upgrades a database of schema 6.)

# A database at schema 3 with samples (in and out of order, a stopped test),
# upgraded by init-db: the same samples and figures, now in chunks.
# Made with the migrations as released (t/schema-6), as their init-db did:
# each in one transaction with its row in schema_migrations.
$s->psql('CREATE DATABASE upgrade', db => 'postgres');
(my $url = $s->database_url) =~ s/dbname=\S+/dbname=upgrade/;
sub up { $s->psql($_[0], db => 'upgrade') }
up('CREATE TABLE schema_migrations (version int PRIMARY KEY, name text NOT NULL, '
	. 'applied_at timestamptz NOT NULL DEFAULT now())');
for my $m (qw(001_init.sql 002_admin_views.sql 003_fast_gap.sql)) {
	open my $fh, '<', $s->srcdir . "/t/schema-6/$m" or die "$m: $!";
	my $sql = do { local $/; <$fh> };
	up("$sql;\nINSERT INTO schema_migrations (version, name) VALUES (" . int(substr $m, 0, 3) . ", '$m')");
}
up(q{INSERT INTO users (username, password_hash) VALUES ('old', 'x')});
up(q{INSERT INTO tests (user_id, name, description, threshold, start_time)
	SELECT id, n, '', 0.4, '2024-01-01Z' FROM users, (VALUES ('a'), ('b')) v (n)});
up(q{SELECT usage_add(u.id, t.id, array_agg('2024-01-01Z'::timestamptz + g * interval '500 ms' ORDER BY g),
	array_agg((g * 7 % 10) / 10.0::float8 ORDER BY g))
	FROM users u JOIN tests t ON t.user_id = u.id, generate_series(1, 250) g
	WHERE t.name = 'a' GROUP BY u.id, t.id});
up(q{SELECT usage_add(u.id, t.id, ARRAY['2024-01-01Z'::timestamptz + g * interval '500 ms' + interval '1 ms'],
	ARRAY[0.9::float8]) FROM users u JOIN tests t ON t.user_id = u.id, generate_series(1, 240, 7) g
	WHERE t.name = 'a'});
up(q{SELECT usage_add(u.id, t.id, array_agg('2024-01-01Z'::timestamptz + g * interval '1 s' ORDER BY g DESC),
	array_agg(g / 60.0::float8 ORDER BY g DESC))
	FROM users u JOIN tests t ON t.user_id = u.id, generate_series(1, 50) g
	WHERE t.name = 'b' GROUP BY u.id, t.id});
up(q{SELECT test_stop(user_id, id, '2024-01-02Z') FROM tests WHERE name = 'b'});
my $samples_q = q{SELECT string_agg(test_id || ':' || ts_us(ts) || ':' || cpu_usage, ',' ORDER BY test_id, ts)
	FROM usage};
my $figures_q = q{SELECT string_agg(concat_ws(':', id, samples, cpu_sum, cpu_max, above_us, ts_us(last_ts)), ','
	ORDER BY id) FROM tests};
my ($samples_before, $figures_before) = (up($samples_q), up($figures_q));
is(up('SELECT count(*) FROM usage'), 250 + 35 + 50, 'schema 3: 335 samples, one row each');

is($s->init_db(TRACKER_DATABASE_URL => $url), 0, 'init-db to the latest schema');
my $latest = () = glob($s->srcdir . '/schema/[0-9][0-9][0-9]_*.sql');
is(up('SELECT max(version) FROM schema_migrations'), $latest, '... every migration applied');
# schema 5: users from before it keep their tokens without jti (legacy) until
# they log out everywhere or change the password; users made after have none.
up(q{INSERT INTO users (username, password_hash) VALUES ('new', 'x')});
is(up(q{SELECT string_agg(username || ':' || legacy_tokens, ',' ORDER BY id) FROM users}),
	'old:true,new:false', '... legacy tokens: kept for users from before schema 5 only');
is(up($samples_q), $samples_before, '... the same samples, through the usage view');
is(up($figures_q), $figures_before, '... the same figures');
is(up('SELECT count(*) FROM usage_recent'), 0, '... none left one per row');
is(up('SELECT count(*) || \' \' || sum(cardinality(ts)) FROM usage_chunk'), '4 335',
	'... packed: 285 samples in 3 chunks, 50 in 1');
is($s->init_db(TRACKER_DATABASE_URL => $url), 0, 'init-db again: nothing to do');
is(up($samples_q), $samples_before, '... the samples untouched');
# A deleted test's samples go with it, packed or not (usage_recent's
# foreign key, ON DELETE CASCADE, since schema 7).
up(q{SELECT usage_add(u.id, t.id, ARRAY[now()], ARRAY[0.5::float8]) FROM users u JOIN tests t ON t.user_id = u.id
	WHERE t.name = 'a'});
is(up('SELECT count(*) FROM usage_recent'), 1, 'a new sample waits in usage_recent');
up(q{DELETE FROM users WHERE username = 'old'});
is(up('SELECT (SELECT count(*) FROM usage_recent) + (SELECT count(*) FROM usage_chunk)'), 0,
	'deleting the user deletes every sample, packed or not');

# The private cluster trusts every connection on its socket: only its own
# user (and root) may enter the socket's directory.
my $pgdir = $s->dir . '/pg';
is(sprintf('%04o', (stat $pgdir)[2] & 07777), '0700', 'the private PostgreSQL socket directory is 0700');
SKIP: {
	skip 'needs root to try as another local user', 1 unless $> == 0;
	my $out = `runuser -u daemon -- psql -X -h $pgdir -p 5432 -U postgres -d postgres -Atc 'SELECT 1' 2>&1`;
	like($out, qr/Permission denied|No such file/,
		'another local user cannot reach the trusting socket')
		or diag $out;
}

# init-db runs without the service's statement and idle timeouts: a
# migration may rewrite every stored sample in one statement (schema 4 packs
# about a million in 6 s), and under the service's 10 s it would fail on a
# large database and the container would restart forever. A last migration
# that refuses to run under any timeout shows what init-db's session has.
$s->psql('CREATE DATABASE probe', db => 'postgres');
my $probe = File::Temp::tempdir(CLEANUP => 1);
File::Copy::copy($_, $probe) or die "copy $_: $!" for glob $s->srcdir . '/schema/*.sql';
open my $pf, '>', "$probe/999_timeout_probe.sql" or die "$probe: $!";
print $pf <<'SQL';
DO $$
BEGIN
	IF current_setting('statement_timeout') <> '0'
	   OR current_setting('idle_in_transaction_session_timeout') <> '0'
	   OR current_setting('lock_timeout') <> '0' THEN
		RAISE EXCEPTION 'migration under statement_timeout %, idle %, lock %',
			current_setting('statement_timeout'),
			current_setting('idle_in_transaction_session_timeout'),
			current_setting('lock_timeout');
	END IF;
END $$;
SQL
close $pf;
(my $probe_url = $s->database_url) =~ s/dbname=\S+/dbname=probe/;
# Even a database whose own default is a tiny timeout.
$s->psql(q{ALTER DATABASE probe SET statement_timeout = '1ms'}, db => 'postgres');
is($s->init_db(TRACKER_DATABASE_URL => $probe_url, TRACKER_SCHEMA_DIR => $probe), 0,
	'init-db runs its migrations with no statement, idle or lock timeout');
$s->psql('ALTER DATABASE probe RESET statement_timeout', db => 'postgres');
is($s->psql('SELECT max(version) FROM schema_migrations', db => 'probe'), 999,
	'... the probe migration was applied');

# --- the service's database role (SPEC 6.1) ------------------------------------------------------

# The stack runs `serve` as a role that init-db granted the rows, not the
# schema: every end-to-end file proves the grants are enough.
my $role = $s->service_role;
like($s->psql('SELECT current_user', user => $role), qr/^\Q$role\E$/, "psql as the service role $role");
is($s->psql(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'
	AND usename = '} . $role . q{' AND datname = current_database()}) > 0 ? 1 : 0, 1,
	'the workers are connected as the service role');
is($s->psql(q{SELECT rolsuper::int + rolcreaterole::int + rolcreatedb::int FROM pg_roles WHERE rolname = '}
	. $role . q{'}), 0, '... which is no superuser and creates neither roles nor databases');
is($s->psql(q{SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
	WHERE r.rolname = '} . $role . q{'}), 0, '... and owns nothing');
# as_service($sql, $db): the error psql prints when $sql fails as the service role, '' when it runs.
sub as_service {
	my ($sql, $db) = @_;
	eval { $s->psql($sql, user => $role, $db ? (db => $db) : ()) };
	return $@ ? ($@ =~ /ERROR:\s*([^\n]*)/)[0] // $@ : '';
}
is(as_service(q{SELECT count(*) FROM users}), '', 'the service role reads the tables');
is(as_service(q{UPDATE users SET username = username WHERE false}), '', '... and writes them');
for my $c (['CREATE TABLE mine (i int)', 'CREATE TABLE'],
	['CREATE VIEW mine AS SELECT 1', 'CREATE VIEW'],
	['CREATE FUNCTION mine() RETURNS int LANGUAGE sql AS $$SELECT 1$$', 'CREATE FUNCTION'],
	['DROP TABLE usage_chunk', 'DROP TABLE'],
	['DROP VIEW test_summary', 'DROP VIEW'],
	['ALTER TABLE tests ADD COLUMN x int', 'ALTER TABLE'],
	['CREATE INDEX mine ON tests (name)', 'CREATE INDEX'],
	['TRUNCATE usage_chunk', 'TRUNCATE'],
	['CREATE TRIGGER mine BEFORE INSERT ON tests EXECUTE FUNCTION usage_add()', 'CREATE TRIGGER'],
	[q{INSERT INTO schema_migrations (version, name) VALUES (998, 'x')}, 'INSERT INTO schema_migrations'],
	[q{DELETE FROM schema_migrations}, 'DELETE FROM schema_migrations'],
	['CREATE SCHEMA mine', 'CREATE SCHEMA'],
	) {
	my ($sql, $what) = @$c;
	like(as_service($sql), qr/permission denied|must be owner/, "the service role cannot $what");
}

is($s->init_db(TRACKER_DB_SERVICE_ROLE => 'no_such_role'), 1, 'init-db refuses a service role that does not exist');
like(slurp($s->dir . '/setup.log'), qr/TRACKER_DB_SERVICE_ROLE: no role no_such_role$/m, '... and says so');
is($s->init_db(TRACKER_DB_SERVICE_ROLE => 'postgres'), 1, 'init-db refuses to grant to the owner (or a superuser)');
like(slurp($s->dir . '/setup.log'), qr/TRACKER_DB_SERVICE_ROLE: postgres is the owner/, '... and says so');

# A table a later migration adds is granted too, without the migration
# saying so: init-db grants on everything, every time.
my $later = File::Temp::tempdir(CLEANUP => 1);
File::Copy::copy($_, $later) or die "copy $_: $!" for glob $s->srcdir . '/schema/*.sql';
open my $mfh, '>', "$later/900_later.sql" or die;
print $mfh "CREATE TABLE later (id bigserial PRIMARY KEY, v text);\n";
close $mfh;
is($s->init_db(TRACKER_DATABASE_URL => $url, TRACKER_SCHEMA_DIR => $later), 0, 'init-db applies a later migration');
is(as_service(q{INSERT INTO later (v) VALUES ('x'); SELECT count(*) FROM later}, 'upgrade'), '',
	'... whose table (and sequence) the service role reads and writes');
like(as_service(q{DROP TABLE later}, 'upgrade'), qr/must be owner/, '... but cannot drop');

$s->stop;
done_testing;
