# The schema (schema/): init-db applies the migrations and the definitions
# (values.sql, functions.sql, views.sql) as schema/functions.sql describes;
# an upgrade from schema 6, the last release before definitions moved out
# of the migrations, keeps every sample and figure and ends with the same
# schema as a fresh database; the tables refuse what the functions never
# write (overlapping or oversized chunks).
use strict;
use warnings;

use File::Copy ();
use File::Temp ();
use Test::More;
use Time::HiRes qw(time sleep);
use GH::Stack qw(now_us wait_until);

my $s = GH::Stack->new->start;
my $u = $s->user;
my $old_dir = $s->srcdir . '/t/schema-6';

sub slurp {
	my $path = shift;
	open my $fh, '<', $path or die "$path: $!";
	local $/;
	return scalar <$fh>;
}
# url($db): the owner's connection string for database $db.
sub url { (my $url = $s->database_url) =~ s/dbname=\S+/dbname=$_[0]/; $url }
# old_schema($db, @files): database $db made as schema 6's init-db made it:
# schema_migrations, then each migration of t/schema-6 with its row, one
# transaction each.
sub old_schema {
	my ($db, @files) = @_;
	$s->psql("CREATE DATABASE $db", db => 'postgres');
	$s->psql('CREATE TABLE schema_migrations (version int PRIMARY KEY, name text NOT NULL, '
		. 'applied_at timestamptz NOT NULL DEFAULT now())', db => $db);
	for my $f (@files) {
		$s->psql(slurp("$old_dir/$f") . ";\nINSERT INTO schema_migrations (version, name) VALUES ("
			. int(substr $f, 0, 3) . ", '$f')", db => $db);
	}
}
# dump($db): the schema of $db as pg_dump writes it.
sub dump_schema {
	my $db = shift;
	my ($host) = $s->database_url =~ /host=(\S+)/;
	my $out = `/usr/lib/postgresql/15/bin/pg_dump -s -h $host -p 5432 -U postgres -d $db 2>&1`;
	die "pg_dump $db: $out" if $?;
	# A key pg_dump draws at random each time.
	return $out =~ s/^\\(?:un)?restrict .*\n//mgr;
}

# --- an upgrade from schema 6 with data ---------------------------------------------

my @six = map { sprintf '%03d_%s.sql', $_->[0], $_->[1] }
	[1, 'init'], [2, 'admin_views'], [3, 'fast_gap'], [4, 'packed_samples'], [5, 'tokens'], [6, 'limits'];
old_schema('six', @six);
sub six { $s->psql($_[0], db => 'six') }
# Made through schema 6's own functions, as its tracker would: a test with
# 250 samples in order and 35 late ones inside its chunks, one with 50 in
# reverse order (stopped, so packed), one running with 70 not yet packed,
# and tokens.
six(q{INSERT INTO users (username, password_hash) VALUES ('six', 'x'), ('other', 'y')});
six(q{INSERT INTO tests (user_id, name, description, threshold, start_time)
	SELECT u.id, n, '', 0.4, '2024-01-01Z' FROM users u, (VALUES ('a'), ('b'), ('c')) v (n)
	WHERE u.username = 'six'});
my $for = q{FROM users u JOIN tests t ON t.user_id = u.id};
six(qq{SELECT usage_add(u.id, t.id, ARRAY['2024-01-01Z'::timestamptz + g * interval '500 ms'],
	ARRAY[(g * 7 % 10) / 10.0::float8]) $for, generate_series(1, 250) g WHERE t.name = 'a' ORDER BY g});
six(qq{SELECT usage_add(u.id, t.id, ARRAY['2024-01-01Z'::timestamptz + g * interval '500 ms' + interval '1 ms'],
	ARRAY[0.9::float8]) $for, generate_series(1, 240, 7) g WHERE t.name = 'a'});
six(qq{SELECT usage_add(u.id, t.id, array_agg('2024-01-01Z'::timestamptz + g * interval '1 s' ORDER BY g DESC),
	array_agg(g / 60.0::float8 ORDER BY g DESC)) $for, generate_series(1, 50) g WHERE t.name = 'b'
	GROUP BY u.id, t.id});
six(q{SELECT test_stop(user_id, id, '2024-01-02Z') FROM tests WHERE name = 'b'});
six(qq{SELECT usage_add(u.id, t.id, array_agg('2024-01-01Z'::timestamptz + g * interval '300 ms' ORDER BY g),
	array_agg(g / 100.0::float8 ORDER BY g)) $for, generate_series(1, 70) g WHERE t.name = 'c'
	GROUP BY u.id, t.id});
six(q{SELECT session_create(id, now() + interval '1 day', 10) FROM users});
my %q = (
	samples => q{SELECT string_agg(test_id || ':' || ts_us(ts) || ':' || cpu_usage, ',' ORDER BY test_id, ts)
		FROM usage},
	figures => q{SELECT string_agg(concat_ws(':', id, end_time, samples, cpu_sum, cpu_max, above_us,
		ts_us(last_ts), recent), ',' ORDER BY id) FROM tests},
	chunks => q{SELECT string_agg(concat_ws(':', test_id, first_ts, last_ts, ts, cpu), ',' ORDER BY test_id, last_ts)
		FROM usage_chunk},
	recent => q{SELECT string_agg(concat_ws(':', test_id, ts, cpu_usage), ',' ORDER BY test_id, ts)
		FROM usage_recent},
	tokens => q{SELECT string_agg(concat_ws(':', id, user_id, expires_at), ',' ORDER BY id) FROM tokens},
	summary => q{SELECT string_agg(concat_ws(':', id, owner, samples, time_above_threshold_s, peak_cpu, mean_cpu),
		',' ORDER BY id) FROM test_summary},
);
my %before = map { $_ => six($q{$_}) } keys %q;
is(six('SELECT count(*) FROM usage'), 250 + 35 + 50 + 70, 'schema 6: 405 samples');
is(six('SELECT count(*) FROM usage_recent'), 10 + 35 + 70, '... 115 of them not packed yet');

is($s->init_db(TRACKER_DATABASE_URL => url('six')), 0, 'init-db upgrades schema 6');
is(six('SELECT max(version) FROM schema_migrations'), 10,
	'... to schema 10 (8: memory, 9: tags, 10: exit status, baseline index)');
is(six(q{SELECT string_agg(concat_ws(':', id, tags, user_cpu IS NULL, system_cpu IS NULL, max_rss IS NULL,
	exit_status IS NULL), ',' ORDER BY id) FROM tests}),
	six(q{SELECT string_agg(id || ':{}:t:t:t:t', ',' ORDER BY id) FROM tests}),
	'... every test without tags or command figures (schema 9) or exit status (schema 10)');
is(six($q{$_}), $before{$_}, "... the same $_") for sort keys %q;
# Schema 8: no sample of before has a memory figure, nor a test.
is(six(q{SELECT count(*) FILTER (WHERE mem_usage IS NOT NULL) || ':' || count(*) FROM usage}), '0:405',
	'... every sample without mem_usage (NULL)');
is(six('SELECT count(*) FROM usage_chunk WHERE mem IS NOT NULL'), 0, '... every chunk without a mem array');
is(six(q{SELECT string_agg(concat_ws(':', mem_samples, mem_sum, coalesce(mem_max::text, 'null')), ',')
	FROM tests}), '0:0:null,0:0:null,0:0:null', '... every test without memory figures');
is(six(q{SELECT count(*) FROM test_summary WHERE peak_mem IS NULL AND mean_mem IS NULL}), 3,
	'... and test_summary says none');
is(six(q{SELECT test_stop(user_id, id, '2024-01-03Z') FROM tests WHERE name = 'b'}), 'already_stopped',
	"... schema 6's test_stop still answers (workers of the previous release)");
is(six(q{SELECT test_stop(user_id, id, '2023-01-01Z') FROM tests WHERE name = 'c'}), 'before_start',
	'... with its statuses');
is(six(q{SELECT s.status || ':' || (s.test).samples || ':' || (s.test).recent FROM tests t,
	test_end(t.user_id, t.id, '2024-01-02Z') s WHERE t.name = 'c'}), 'ok:70:0',
	'test_end stops a test and returns its row, packed, in one call');
is(six(q{SELECT s.status || ':' || ((s.test).end_time = '2024-01-02Z') FROM tests t,
	test_end(t.user_id, t.id, '2024-01-03Z') s WHERE t.name = 'c'}), 'already_stopped:true',
	'... and a stopped one as it is');
is(six(q{SELECT s.status || ':' || ((s.test).id IS NULL) FROM test_end(0, 0, now()) s}), 'not_found:true',
	'... and no row for no test');
is(six(q{SELECT s.status || ':' || (s.test).user_cpu || ':' || (s.test).system_cpu || ':' || (s.test).max_rss
	FROM tests t, test_finish(t.user_id, t.id, '2024-01-02Z', 1.5, 0.25, 2048) s WHERE t.name = 'a'}),
	'ok:1.5:0.25:2048', 'test_finish stores the command\'s resources');
is(six(q{SELECT s.status || ':' || ((s.test).exit_status IS NULL) FROM tests t,
	test_finish(t.user_id, t.id, '2024-01-02Z', 1.5, 0.25, 2048) s WHERE t.name = 'a'}),
	'already_stopped:true', "... schema 9's test_finish, without an exit status (old workers)");
is(six(q{SELECT t.tags FROM users u, test_create(u.id, 'legacy', '', 0.5, now(), 100) t
	WHERE u.username = 'six'}), '{}', "schema 6's test_create still creates, without tags");
six(q{UPDATE tests SET end_time = NULL WHERE name = 'c'});
my $n = six(q{SELECT (usage_add(u.id, t.id, ARRAY['2024-01-01Z'::timestamptz + interval '22 s'],
	ARRAY[0.5::float8])).stored } . "$for WHERE t.name = 'c'");
is($n, 1, 'the upgraded database stores a new sample');
# usage_add of schema 7 (old workers) calls usage_add_mem, without memory;
# then one with memory, before and after what is stored, and a batch
# mixing samples with and without.
is(six(qq{SELECT (usage_add_mem(u.id, t.id, ARRAY['2024-01-01Z'::timestamptz + interval '30 s',
	'2024-01-01Z'::timestamptz + interval '100 ms', '2024-01-01Z'::timestamptz + interval '31 s'],
	ARRAY[0.5, 0.5, 0.5]::float8[], ARRAY[0.25, NULL, 0.75]::float8[])).stored $for WHERE t.name = 'c'}), 3,
	'usage_add_mem stores samples with and without mem_usage');
is(six(qq{SELECT concat_ws(':', mem_samples, mem_sum, mem_max) FROM tests WHERE name = 'c'}), '2:1:0.75',
	'... and keeps the test\'s memory figures over those that have one');
is(six(q{SELECT string_agg(coalesce(mem_usage::text, '-'), ',' ORDER BY ts) FROM usage u JOIN tests t
	ON t.id = u.test_id WHERE t.name = 'c' AND ts >= '2024-01-01Z'::timestamptz + interval '22 s'}), '-,0.25,0.75',
	'... stored with the samples, NULL where absent');

# The same schema as a fresh database's: nothing an upgrade leaves behind
# or lacks (the functions of schema 6 included, now from functions.sql).
$s->psql('CREATE DATABASE fresh', db => 'postgres');
is($s->init_db(TRACKER_DATABASE_URL => url('fresh')), 0, 'init-db makes a fresh database');
my ($up, $fresh) = (dump_schema('six'), dump_schema('fresh'));
unless (ok($up eq $fresh, '... whose schema (pg_dump -s) is the upgraded one\'s, to the byte')) {
	my %f = (up => $up, fresh => $fresh);
	for (keys %f) { open my $fh, '>', $s->dir . "/schema-$_.sql" or die $!; print $fh $f{$_}; close $fh }
	diag `diff ${\ $s->dir}/schema-up.sql ${\ $s->dir}/schema-fresh.sql | head -40`;
}

my $t = $u->api(POST => 'test', {})->{json}{id};

# --- init-db again changes nothing; a changed definition is applied ----------------------

my $defs_q = q{SELECT string_agg(x, ',' ORDER BY x) FROM (
	SELECT 'f:' || p.oid::regprocedure || ':' || p.oid || ':' || md5(pg_get_functiondef(p.oid)) AS x
	FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
	UNION ALL SELECT 'v:' || c.relname || ':' || c.oid || ':' || md5(pg_get_viewdef(c.oid))
	FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'v'
	UNION ALL SELECT 't:' || t.tgname || ':' || t.oid || ':' || t.xmin FROM pg_trigger t WHERE NOT t.tgisinternal
	UNION ALL SELECT 'c:' || conname || ':' || oid || ':' || xmin FROM pg_constraint
	WHERE connamespace = 'public'::regnamespace) d};
my $defs = $s->psql($defs_q);
like($defs, qr/f:usage_add\(/, 'the definitions list has usage_add');
is($s->init_db, 0, 'init-db again');
# (The grants, made every time, rewrite the functions' and views' rows:
# their oid and text are compared; the triggers' and constraints' row
# versions too.)
is($s->psql($defs_q), $defs, '... leaves every function, view, trigger and constraint as it was');
unlike(slurp($s->dir . '/setup.log') =~ s/.*\$ [^\n]*init-db\n//sr, qr/^applied/m, '... and applies nothing');

# A copy of schema/ with a function, a constant and a view's columns changed.
my $changed = File::Temp::tempdir(CLEANUP => 1);
File::Copy::copy($_, $changed) or die "copy $_: $!" for glob $s->srcdir . '/schema/*.sql';
sub edit {
	my ($file, $from, $to) = @_;
	my $text = slurp("$changed/$file");
	$text =~ s/\Q$from\E/$to/ or die "$file: no $from";
	open my $fh, '>', "$changed/$file" or die $!;
	print $fh $text;
	close $fh;
}
edit('values.sql', 'RETURN 120;', 'RETURN 100;');
edit('functions.sql', 'DELETE FROM tokens WHERE user_id = p_user;',
	'DELETE FROM tokens WHERE user_id = p_user; -- changed');
edit('views.sql', 'u.username AS owner,', 'u.username AS owner_name,');
is($s->init_db(TRACKER_SCHEMA_DIR => $changed), 0, 'init-db with changed definitions');
is($s->psql('SELECT chunk_size()'), 100, '... a changed constant is applied');
like($s->psql(q{SELECT prosrc FROM pg_proc WHERE proname = 'user_revoke_all'}), qr/-- changed/,
	'... a changed function is applied');
is($s->psql('SELECT count(owner_name) > 0 FROM test_summary', user => $s->service_role) // '', 't',
	'... a view whose columns changed is made again, and granted');
is($s->api(GET => 'health')->{status}, 200, '... while the workers serve');
# Applying definitions waits for no writer for long: with a transaction
# holding a writer's lock on tests (an admin's, say), init-db gives up after
# its lock_timeout rather than queue every worker's write behind it, and
# changes nothing; the service goes on.
my $holder = $s->psql_async(q{BEGIN; LOCK TABLE tests IN ROW EXCLUSIVE MODE; SELECT pg_sleep(20)});
ok(wait_until(10, sub { $s->psql(q{SELECT count(*) FROM pg_stat_activity
	WHERE query LIKE '%pg_sleep(20)%' AND state = 'active' AND pid <> pg_backend_pid()}) }),
	'a writer holds a lock on tests');
my $t0 = time;
is($s->init_db, 1, 'init-db with a writer holding tests: exit 1');
my $waited = time - $t0;
ok($waited >= 4.5 && $waited < 15 * $s->slow, sprintf '... after its 5 s lock_timeout (%.1f s)', $waited);
like(slurp($s->dir . '/setup.log'), qr/lock timeout/, '... and says why');
is($s->psql('SELECT chunk_size()'), 100, '... having changed nothing');
kill 'TERM', $holder;
waitpid $holder, 0;
$s->psql(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(20)%'
	AND pid <> pg_backend_pid()});
is($u->api(GET => "test/$t")->{status}, 200, '... and the service goes on');
is($s->init_db, 0, 'init-db with schema/ again');
is($s->psql('SELECT chunk_size()'), 120, '... puts the constant back');
is($s->psql(q{SELECT count(owner) > 0 FROM test_summary}), 't', '... and the view');

# --- the rules the tables keep ---------------------------------------------------------

# chunk($first_s, $last_s, $n): insert a chunk of test $t as the owner; the error, or ''.
sub chunk {
	my ($first, $last, $n) = @_;
	my $sql = qq{INSERT INTO usage_chunk (test_id, first_ts, last_ts, ts, cpu)
		SELECT $t, min(x), max(x), array_agg(x ORDER BY x), array_agg(0.5::float8)
		FROM (SELECT '2024-01-01Z'::timestamptz + ($first + ($last - $first) * g / greatest($n - 1, 1))
			* interval '1 s' AS x FROM generate_series(0, $n - 1) g) q};
	eval { $s->psql($sql) };
	return $@ ? ($@ =~ /ERROR:\s*([^\n]*)/)[0] // $@ : '';
}
is(chunk(0, 100, 101), '', 'a chunk of 101 samples');
is(chunk(200, 300, 101), '', 'another after it');
like(chunk(150, 250, 2), qr/exclusion constraint "usage_chunk_disjoint"/, 'an overlapping chunk is refused');
like(chunk(100, 150, 2), qr/usage_chunk_disjoint/, 'a chunk sharing an end is refused');
like(chunk(-50, 350, 2), qr/usage_chunk_disjoint/, 'a chunk around others is refused');
is(chunk(120, 130, 2), '', 'a chunk between them is not');
like(chunk(400, 500, 121), qr/usage_chunk_size/, 'a chunk of chunk_size() + 1 samples is refused');
like(eval { $s->psql(qq{INSERT INTO usage_chunk (test_id, first_ts, last_ts, ts, cpu)
	VALUES ($t, '2030-01-01Z', '2030-01-01Z', ARRAY['2030-01-01Z'::timestamptz], ARRAY[0.1, 0.2])}); '' } // $@,
	qr/usage_chunk_size/, 'a chunk with more cpu values than timestamps is refused');
like(eval { $s->psql(qq{INSERT INTO usage_chunk (test_id, first_ts, last_ts, ts, cpu, mem)
	VALUES ($t, '2030-01-01Z', '2030-01-01Z', ARRAY['2030-01-01Z'::timestamptz], ARRAY[0.1], ARRAY[0.1, 0.2])}); '' }
	// $@, qr/usage_chunk_mem_size/, 'a chunk with more mem values than timestamps is refused');
like(eval { $s->psql(qq{INSERT INTO usage_recent (test_id, ts, cpu_usage, mem_usage) VALUES ($t, now(), 0.5, 1.5)});
	'' } // $@, qr/usage_recent_mem_usage_check/, 'a mem_usage above 1 is refused');
like(eval { $s->psql(q{INSERT INTO usage_recent (test_id, ts, cpu_usage) VALUES (999999, now(), 0.5)}); '' } // $@,
	qr/usage_recent_test_id_fkey/, 'a sample of no test is refused (the foreign key)');
is($s->psql(q{SELECT reloptions FROM pg_class WHERE relname = 'tests'}), '{fillfactor=50}',
	'tests leaves room for HOT updates');
like($s->psql(q{SELECT reloptions FROM pg_class WHERE relname = 'usage_recent'}),
	qr/autovacuum_vacuum_scale_factor=0/, 'usage_recent is vacuumed by dead rows, not by its size');

# --- init-db as the database's owner, no superuser (as in docker-compose.yml) ---------------

$s->psql(q{CREATE ROLE gh_owner LOGIN}, db => 'postgres');
$s->psql(q{CREATE DATABASE owned OWNER gh_owner}, db => 'postgres');
(my $owned = url('owned')) =~ s/user=\S+/user=gh_owner/;
is($s->init_db(TRACKER_DATABASE_URL => $owned), 0, 'init-db as an owner who is no superuser (btree_gist is trusted)');
is($s->psql(q{SELECT count(*) FROM pg_constraint WHERE conname = 'usage_chunk_disjoint'}, db => 'owned'), 1,
	'... makes the exclusion constraint');
unlike(slurp($s->dir . '/setup.log') =~ s/.*\$ [^\n]*init-db\n//sr, qr/WARNING/,
	'... without a warning (no grant on what it cannot grant)');
is($s->init_db(TRACKER_DATABASE_URL => $owned), 0, '... and again');

$s->stop;
done_testing;
