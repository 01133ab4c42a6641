# Tokens that can be taken back (SPEC 6.2): named tokens, log out
# everywhere, password change and deleted users; a revoked token is 401 on
# every worker of every host within a second, with no database round trip
# per request (docs/architecture.md: the cache and the listener).
use strict;
use warnings;
use utf8;

use IO::Socket::UNIX;
use POSIX qw(WNOHANG);
use Socket qw(SOCK_STREAM);
use Test::More;
use Time::HiRes qw(sleep time);
use GH::Stack qw(is_error is_json_ok slurp json_decode json_encode wait_until wait_exit);

my $WORKERS = 3;
# The clients below send as fast as the pool answers (thousands a second
# with an optimised build), far past the per-user rate limit: that limit is
# api-limits.t's subject, here it would turn the 200s and 204s into 429s.
my $s = GH::Stack->new(workers => $WORKERS, env => {TRACKER_USER_RATE => 0})->start;
# Every statement in the log with its backend's pid: each worker has one
# connection (TRACKER_DB_CONNECTIONS=1), so a pid is a worker.
$s->psql(q{ALTER SYSTEM SET log_min_duration_statement = 0});
$s->psql(q{ALTER SYSTEM SET log_line_prefix = '[%p] '});
$s->psql(q{SELECT pg_reload_conf()});
my $pglog = $s->dir . '/pg/postgres.log';

# --- a second host: another pool on the same database ------------------------

# It has no nginx of its own: fcgi() speaks FastCGI to its socket.
my $sock2 = $s->dir . '/host2.sock';
my ($pid2, $log2) = $s->spawn_tracker({TRACKER_LISTEN => $sock2, TRACKER_WORKERS => 2}, 'serve');
wait_until(15, sub { -S $sock2 });
ok(-S $sock2, 'a second pool ("host 2") runs on the same database');

# fcgi($method, $path, $token): one request to host 2 → its HTTP status.
sub fcgi {
	my ($method, $path, $token) = @_;
	my $c = IO::Socket::UNIX->new(Peer => $sock2, Type => SOCK_STREAM) or return 0;
	my $rec = sub { pack('CCnnCC', 1, $_[0], 1, length $_[1], 0, 0) . $_[1] };
	my %p = (REQUEST_METHOD => $method, DOCUMENT_URI => "/api/v1/$path",
		REQUEST_URI => "/api/v1/$path", QUERY_STRING => '', CONTENT_LENGTH => 0,
		SERVER_PROTOCOL => 'HTTP/1.1', GATEWAY_INTERFACE => 'CGI/1.1');
	$p{HTTP_AUTHORIZATION} = "Bearer $token" if defined $token;
	my $params = join '', map { pack('CN', length $_, length($p{$_}) | 0x80000000) . $_ . $p{$_} }
		sort keys %p;
	print $c $rec->(1, pack('nCx5', 1, 0)), $rec->(4, $params), $rec->(4, ''), $rec->(5, '');
	my ($out, $buf) = ('', '');
	while (sysread $c, my $chunk, 65536) { $buf .= $chunk }
	while (length $buf >= 8) {
		my (undef, $type, undef, $len, $pad) = unpack 'CCnnC', $buf;
		last if length $buf < 8 + $len + $pad;
		$out .= substr $buf, 8, $len if $type == 6;
		substr($buf, 0, 8 + $len + $pad) = '';
	}
	return $out =~ /^Status: (\d+)/ ? $1 : 0;
}

# --- helpers -------------------------------------------------------------------------

# token_checks($jti): the pids of the backends (workers) that ran
# token_check for it so far, with how many times each.
sub token_checks {
	my $jti = shift;
	my %by;
	my @lines = split /\n/, slurp($pglog) // '';
	for my $i (0 .. $#lines - 1) {
		next unless $lines[$i] =~ /^\[(\d+)\] .*execute token_check/;
		my $pid = $1;
		$by{$pid}++ if $lines[$i + 1] =~ /^\[$pid\] DETAIL:  parameters: \$1 = '\d+', \$2 = '$jti'/;
	}
	return \%by;
}

# warm($token, $jti): use the token until every worker has checked it once
# (and remembers it); → the number of workers that did.
sub warm {
	my ($token, $jti) = @_;
	for (1 .. 20) {
		$s->parallel(6, sub { $s->as($token)->api(GET => 'test')->{status} for 1 .. 5; 1 });
		my $n = keys %{ token_checks($jti) };
		return $n if $n >= $WORKERS;
	}
	return scalar keys %{ token_checks($jti) };
}

# revoked_within($what, $revoke, NAME => TOKEN, ...): four clients use each
# token in turn through nginx and one on host 2, while a sixth runs
# $revoke->() a second in.  The revocation takes effect when it commits,
# somewhere before the call returns: for each token nothing answers 200 later
# than a second after the call returned, and from then on everything is 401,
# on both hosts.  Prints when the last 200 came, from the call's start and
# from its return.
sub revoked_within {
	my ($what, $revoke, @tokens) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $limit = $s->scale(1.0);
	my @names = @tokens[grep { $_ % 2 == 0 } 0 .. $#tokens];
	my %token = @tokens;
	my $t0 = time + $s->scale(1.0);    # when the revoking call begins
	my $returned = $s->dir . '/revoke-returned';
	unlink $returned;
	my @runs = $s->parallel(6, sub {
		my $i = shift;
		if ($i == 6) {
			sleep $t0 - time if $t0 > time;
			$revoke->();
			my $done = time - $t0;
			open my $fh, '>', "$returned.tmp" or die;
			print $fh $done;
			close $fh;
			rename "$returned.tmp", $returned;
			return [['', $done, 0, 'revoked']];
		}
		# Until 0.3 s past the second after the call returned (a slow call
		# on a loaded machine: up to a minute).
		my @seen;
		for (my $k = $i; time < $t0 + $s->scale(60); $k++) {
			my $done = slurp($returned);
			last if defined $done && time > $t0 + $done + $limit + $s->scale(0.3);
			my $name = $names[$k % @names];
			my $st = $i == 5 ? fcgi(GET => 'test', $token{$name})
				: $s->as($token{$name})->api(GET => 'test')->{status};
			push @seen, [$name, time - $t0, $st, $i == 5 ? 'host 2' : 'nginx'];
		}
		return \@seen;
	});
	my $done = $runs[5] ? $runs[5][0][1] : 99;
	my @all = map { @{ $_ // [] } } @runs[0 .. 4];
	for my $name (@names) {
		my @mine = grep { $_->[0] eq $name } @all;
		my @odd = grep { $_->[1] < 0 && $_->[2] != 200 } @mine;
		my @ok = grep { $_->[2] == 200 } @mine;
		my @late = grep { $_->[1] > $done + $limit } @mine;
		my ($last200) = sort { $b <=> $a } map { $_->[1] } @ok;
		diag sprintf '%s, %s: %d requests; the revoking call took %.3f s; the last 200 came '
			. '%.3f s after it began, %.3f s after it returned',
			$what, $name, scalar @mine, $done, $last200 // -1, ($last200 // -1) - $done;
		ok(!@odd, "$what, $name: the token worked until then")
			or diag explain [@odd[0 .. ($#odd < 4 ? $#odd : 4)]];
		ok(@late && !grep({ $_->[2] != 401 } @late) && !grep({ $_->[1] > $done + $limit } @ok)
			&& !grep({ $_->[2] != 401 && $_->[2] != 200 } @mine)
			&& grep({ $_->[3] eq 'host 2' } @late),
			"$what, $name: 401 on every worker of both hosts within a second");
	}
}

sub unauthorized {
	my ($r, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	is_error($r, 401, 'unauthorized', $name);
}

# --- named tokens: create, list, use ----------------------------------------------------

my $alice = $s->user;
my $bob = $s->user;
my $r = $alice->api(POST => 'tokens', {name => 'ci runner', expires_in => 3600});
is_json_ok($r, 201, 'POST /tokens: 201');
my $named = $r->{json};
is_deeply([sort keys %$named], [qw(created_at expires_at id name token)], '... {id, name, token, created_at, expires_at}');
is($named->{name}, 'ci runner', '... the name');
my $claims = $s->jwt_claims($named->{token});
is($claims->{jti}, "$named->{id}", '... its jti is its id');
is($claims->{sub}, '' . $alice->id, '... its sub the caller');
is($claims->{exp} - $claims->{iat}, 3600, '... expires_in seconds after its issue');
my $aa = $s->jwt_claims($alice->token);
like($aa->{jti} // '', qr/^[1-9]\d*$/, 'a session token from /auth has a jti too');
my $nt = $s->as($named->{token});
is($nt->api(GET => 'test')->{status}, 200, 'the named token works');

$r = $alice->api(POST => 'tokens', {name => 'laptop'});
my $laptop = $r->{json};
my $days = ($s->jwt_claims($laptop->{token})->{exp} - $s->jwt_claims($laptop->{token})->{iat}) / 86400;
is($days, 90, 'expires_in defaults to 90 days');
$r = $alice->api(GET => 'tokens');
is_json_ok($r, 200, 'GET /tokens: 200');
is_deeply([map { $_->{id} } @{ $r->{json}{tokens} }], [$laptop->{id}, $named->{id}],
	'... the named tokens, newest first, no session');
is_deeply([sort keys %{ $r->{json}{tokens}[0] }], [qw(created_at expires_at id last_used_at name)],
	'... each {id, name, created_at, expires_at, last_used_at}');
ok(index($r->{content}, $named->{token}) < 0 && index($r->{content}, (split /\./, $named->{token})[2]) < 0
	&& !grep({ exists $_->{token} } @{ $r->{json}{tokens} }), '... never a token');
is($r->{json}{tokens}[0]{last_used_at}, undef, '... an unused token: last_used_at null');
like($r->{json}{tokens}[1]{last_used_at} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:00Z$/,
	'... a used one: last_used_at to the minute');
is_deeply($bob->api(GET => 'tokens')->{json}, {tokens => []}, 'bob sees none of them');
$s->psql("UPDATE tokens SET expires_at = now() - interval '1 s' WHERE id = $laptop->{id}");
is_deeply([map { $_->{id} } @{ $alice->api(GET => 'tokens')->{json}{tokens} }], [$named->{id}],
	'an expired token is not listed');
unauthorized($s->as($laptop->{token})->api(GET => 'test'), '... nor accepted, whatever its exp says');

# --- the cache: no database round trip, no write per request -------------------------------

# Start at the beginning of a minute, so that last_used_at cannot move.
sleep 61 - (time % 60) if time % 60 > 45;
my $n = warm($named->{token}, $named->{id});
is($n, $WORKERS, "every worker checked the named token once ($n of $WORKERS)");
my $checks = token_checks($named->{id});
my $xmin = $s->psql("SELECT xmin FROM tokens WHERE id = $named->{id}");
my $used = $s->psql("SELECT last_used_at = date_trunc('minute', now()) FROM tokens WHERE id = $named->{id}");
$s->parallel(4, sub { $nt->api(GET => 'test')->{status} for 1 .. 10; 1 });
is_deeply(token_checks($named->{id}), $checks, '40 more requests: the database was not asked again');
is($s->psql("SELECT xmin FROM tokens WHERE id = $named->{id}"), $xmin, '... and the row was not written');
is($used, 't', '... last_used_at is this minute');
is(fcgi(GET => 'test', $named->{token}), 200, 'the named token works on host 2 too');

# --- revoking a named token ------------------------------------------------------------------

is_error($bob->api(DELETE => "tokens/$named->{id}"), 404, 'not_found', "bob cannot revoke alice's token");
is($nt->api(GET => 'test')->{status}, 200, '... it still works');
for my $id ('0', '-1', 'abc', '99999999999999999999', '987654321', "$named->{id}x", "0$named->{id}") {
	is_error($alice->api(DELETE => "tokens/$id"), 404, 'not_found', "DELETE /tokens/$id: 404");
}
my $answer = $s->dir . '/revoke-answer.json';
# revoke($method, $path, $body, $user): the revoking call, its answer kept
# in $answer for the parent.
sub revoke {
	my ($m, $path, $body, $u) = @_;
	return sub {
		my $r = $u->api($m, $path, $body);
		delete $r->{json};
		open my $fh, '>', $answer or die;
		print $fh json_encode($r);
		close $fh;
	};
}
sub answer { json_decode(slurp($answer) // '{}') }
revoked_within('DELETE /tokens/:id', revoke(DELETE => "tokens/$named->{id}", undef, $alice),
	'the named token' => $named->{token});
$r = answer();
is($r->{status}, 204, 'DELETE /tokens/:id: 204');
is($r->{content}, '', '... with an empty body');
ok(!exists $r->{headers}{'content-type'} && !exists $r->{headers}{'content-length'},
	'... and neither Content-Type nor Content-Length');
is(fcgi(GET => 'test', $named->{token}), 401, '... 401 on host 2');
is_error($alice->api(DELETE => "tokens/$named->{id}"), 404, 'not_found', '... revoking it again: 404');
is($alice->api(GET => 'test')->{status}, 200, "alice's session is untouched");

# A session is a token too: its jti revokes just it.
my $second = $s->login($alice->username, $alice->password)->{json}{token};
my $sjti = $s->jwt_claims($second)->{jti};
is($alice->api(DELETE => "tokens/$sjti")->{status}, 204, 'DELETE /tokens/<jti of a session>: 204');
unauthorized($s->as($second)->api(GET => 'test'), '... that session is over');
is($alice->api(GET => 'test')->{status}, 200, '... the other goes on');

# --- log out everywhere ------------------------------------------------------------------

my $carol = $s->user;
my $cn = $carol->api(POST => 'tokens', {name => 'n'})->{json};
# A token from before tokens had rows: no jti, a user who had it then.
$s->psql('UPDATE users SET legacy_tokens = true WHERE id = ' . $carol->id);
my $legacy = $s->jwt({sub => '' . $carol->id, iat => int time, exp => int(time) + 3600});
is($s->as($legacy)->api(GET => 'test')->{status}, 200, 'a legacy token (no jti) of a user from before works');
is(fcgi(GET => 'test', $legacy), 200, '... on host 2 too');
is(warm($cn->{token}, $cn->{id}), $WORKERS, '... the named token is cached on every worker');
$s->parallel(6, sub { $s->as($_) ->api(GET => 'test') for ($carol->token, $legacy) x 5; 1 });
revoked_within('DELETE /auth', revoke(DELETE => 'auth', undef, $carol),
	'the session that called it' => $carol->token, 'a named token' => $cn->{token},
	'a legacy token' => $legacy);
$r = answer();
is($r->{status}, 204, 'DELETE /auth: 204');
is($r->{content}, '', '... empty');
is($s->psql('SELECT count(*) FROM tokens WHERE user_id = ' . $carol->id), 0, '... no rows left');
my $again = $s->login($carol->username, $carol->password);
is($s->as($again->{json}{token})->api(GET => 'test')->{status}, 200, 'logging in again works');
unauthorized($s->as($legacy)->api(GET => 'test'), '... the legacy token stays dead');

# --- password change ------------------------------------------------------------------

my $dave = $s->user;
my $dn = $dave->api(POST => 'tokens', {name => 'n'})->{json};
my $other = $s->login($dave->username, $dave->password)->{json}{token};
is(warm($dn->{token}, $dn->{id}), $WORKERS, 'dave\'s named token is cached on every worker');
my $pw = 'users/me/password';
is_error($dave->api(POST => $pw, {password => 'wrong-password', new_password => 'n' x 12}),
	403, 'wrong_password', 'a wrong current password: 403 wrong_password');
is_error($dave->api(POST => $pw, {password => 'x' x 2000, new_password => 'n' x 12}),
	403, 'wrong_password', 'a current password over 1024 bytes: 403');
is_error($dave->api(POST => $pw, {password => $dave->password, new_password => 'short'}),
	400, 'invalid_field', 'a new password under 8 bytes: 400', field => 'new_password');
is_error($dave->api(POST => $pw, {password => $dave->password, new_password => 'n' x 1025}),
	400, 'invalid_field', 'a new password over 1024 bytes: 400', field => 'new_password');
is_error($dave->api(POST => $pw, {password => $dave->password}), 400, 'invalid_field', 'no new_password: 400');
is_error($dave->api(POST => $pw, {new_password => 'n' x 12}), 400, 'invalid_field', 'no password: 400');
is_error($dave->api(POST => $pw, {password => undef, new_password => 'n' x 12}), 400, 'invalid_field',
	'password null: 400');
is_error($dave->api(POST => $pw, {password => $dave->password, new_password => undef}), 400,
	'invalid_field', 'new_password null: 400');
is_error($dave->api(POST => $pw, {password => $dave->password, new_password => 'n' x 12, x => 1}), 400,
	'invalid_field', 'an unknown field: 400');
is_error($dave->api(POST => $pw, '[]'), 400, 'invalid_json', 'not an object: 400');
is($dave->api(GET => 'test')->{status}, 200, '... none of these ended a token');
revoked_within('password change',
	revoke(POST => $pw, {password => $dave->password, new_password => 'a new password'}, $dave),
	'the token that made it' => $dave->token, 'another session' => $other,
	'a named token' => $dn->{token});
$r = answer();
is($r->{status}, 204, 'POST /users/me/password: 204');
is($r->{content}, '', '... empty');
is_error($s->login($dave->username, $dave->password), 401, 'unauthorized', 'the old password no longer logs in');
my $fresh = $s->login($dave->username, 'a new password');
is($fresh->{status}, 200, 'the new one does');
is($s->as($fresh->{json}{token})->api(GET => 'test')->{status}, 200, '... and its token works');

# --- a deleted user ------------------------------------------------------------------

my $erin = $s->user;
my $en = $erin->api(POST => 'tokens', {name => 'n'})->{json};
$s->psql('UPDATE users SET legacy_tokens = true WHERE id = ' . $erin->id);
my $elegacy = $s->jwt({sub => '' . $erin->id, iat => int time, exp => int(time) + 3600});
is(warm($en->{token}, $en->{id}), $WORKERS, "erin's named token is cached on every worker");
$s->parallel(6, sub { $s->as($elegacy)->api(GET => 'test') for 1 .. 5; 1 });
revoked_within('a deleted user', sub { $s->psql('DELETE FROM users WHERE id = ' . $erin->id) },
	'the session' => $erin->token, 'a named token' => $en->{token}, 'a legacy token' => $elegacy);

# --- the listener's connection killed ------------------------------------------------

my $frank = $s->user;
my $fn = $frank->api(POST => 'tokens', {name => 'n'})->{json};
is(warm($fn->{token}, $fn->{id}), $WORKERS, "frank's named token is cached on every worker");
my $listeners = q{SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN grasshopper_revoke'};
is($s->psql($listeners), $WORKERS + 2, 'one listener per worker, both hosts');
revoked_within('the listeners\' backends terminated, then at once a token revoked', sub {
	$s->psql(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query = 'LISTEN grasshopper_revoke'});
	revoke(DELETE => "tokens/$fn->{id}", undef, $frank)->();
}, 'a named token' => $fn->{token});
is(answer()->{status}, 204, '... the token was revoked');
my $back = 0;
wait_until(10, sub { ($back = $s->psql($listeners)) == $WORKERS + 2 }, 0.1);
is($back, $WORKERS + 2, 'the listeners are back');
my $fn2 = $frank->api(POST => 'tokens', {name => 'n2'})->{json};
is(warm($fn2->{token}, $fn2->{id}), $WORKERS, '... the cache is used again');
my $c0 = token_checks($fn2->{id});
$s->parallel(4, sub { $s->as($fn2->{token})->api(GET => 'test') for 1 .. 5; 1 });
is_deeply(token_checks($fn2->{id}), $c0, '... (no check per request)');
revoked_within('after the listeners came back', revoke(DELETE => "tokens/$fn2->{id}", undef, $frank),
	'a named token' => $fn2->{token});
is(answer()->{status}, 204, '... revoked');

# --- hostile input ------------------------------------------------------------------

my $g = $s->user;
sub create { $g->api(POST => 'tokens', @_) }
is(create({name => 'é' x 64})->{status}, 201, 'a name of 64 characters (128 bytes): 201');
is_error(create({name => 'a' x 65}), 400, 'invalid_field', 'a name of 65 characters: 400', field => 'name');
is_error(create({name => ''}), 400, 'invalid_field', 'an empty name: 400', field => 'name');
is_error(create({name => 'x' x (1024 * 1024 - 100)}), 400, 'invalid_field', 'a name of almost 1 MiB: 400');
is_error(create({name => 'x' x (1024 * 1024)}), 413, 'too_large', 'a body over 1 MiB: 413');
for my $c ("\t", "\n", "\x00", "\x1b[31m", "\x7f", "\x{85}", "\x{9f}") {
	my $shown = join '', map { sprintf '\\u%04x', ord } split //, $c;
	is_error(create({name => "a${c}b"}), 400, 'invalid_field', "a name with $shown: 400");
}
is(create({name => "tab\x{a0}é\x{2028}ok"})->{status}, 201, 'a name with U+00A0 and U+2028: 201');
is_error(create({}), 400, 'invalid_field', 'no name: 400', field => 'name');
is_error(create({name => undef}), 400, 'invalid_field', 'name null: 400', field => 'name');
is_error(create({name => 5}), 400, 'invalid_field', 'name a number: 400', field => 'name');
is_error(create({name => 'n', token => 'x'}), 400, 'invalid_field', 'an unknown field: 400');
is_error(create('{"name":"a","name":"b"'), 400, 'invalid_json', 'broken JSON: 400');
for my $e ([59, '59'], [31536001, '31536001'], [1.5, '1.5'], ['60', '"60"'], [undef, 'null'],
    [-60, '-60'], [60.0, '60.0'], [JSON::PP::true, 'true'], ['99999999999999999999', '1e20 as text']) {
	my $body = $e->[1] eq '60.0' ? '{"name":"n","expires_in":60.0}' : {name => 'n', expires_in => $e->[0]};
	is_error(create($body), 400, 'invalid_field', "expires_in $e->[1]: 400", field => 'expires_in');
}
is(create('{"name":"n","expires_in":99999999999999999999}')->{status}, 400, 'expires_in beyond int64: 400');
for my $e (60, 31536000) {
	$r = create({name => "e$e", expires_in => $e});
	is($r->{status}, 201, "expires_in $e: 201");
	my $c = $s->jwt_claims($r->{json}{token} // '');
	is($c->{exp} - $c->{iat}, $e, "... the token expires $e s after its issue");
}
my $live = $s->psql('SELECT count(*) FROM tokens WHERE name IS NOT NULL AND user_id = ' . $g->id);
my @made = $s->parallel(4, sub {
	my @st;
	push @st, $g->api(POST => 'tokens', {name => "bulk $_[0]-$_"})->{status} for 1 .. 30;
	return \@st;
});
my @st = map { @{ $_ // [] } } @made;
is(scalar(grep { $_ == 201 } @st), 100 - $live, "made concurrently: up to 100 live named tokens");
is($s->psql('SELECT count(*) FROM tokens WHERE name IS NOT NULL AND user_id = ' . $g->id), 100, '... 100 rows');
is_error(create({name => 'the 101st'}), 429, 'too_many_tokens', 'the 101st: 429 too_many_tokens');
my $one = $g->api(GET => 'tokens')->{json}{tokens}[0]{id};
is(scalar @{ $g->api(GET => 'tokens')->{json}{tokens} }, 100, 'GET /tokens lists all 100');
is($g->api(DELETE => "tokens/$one")->{status}, 204, 'revoke one');
is(create({name => 'fits again'})->{status}, 201, '... and there is room for another');

# Sessions: expired rows go at the next login, and at most 1000 are kept.
$s->psql('INSERT INTO tokens (user_id, expires_at) SELECT ' . $g->id
	. q{, now() + interval '1 h' FROM generate_series(1, 1005)});
$s->psql('INSERT INTO tokens (user_id, name, expires_at) VALUES (' . $g->id . q{, 'old', now() - interval '1 s')});
is($s->login($g->username, $g->password)->{status}, 200, 'a login with 1005 live sessions');
is($s->psql('SELECT count(*) FROM tokens WHERE name IS NULL AND user_id = ' . $g->id), 1000,
	'... leaves the newest 1000');
is($s->psql(q{SELECT count(*) FROM tokens WHERE expires_at <= now() AND user_id = } . $g->id), 0,
	'... and no expired row');

# Every route, without a token and with a revoked one.
my $dead = $alice->api(POST => 'tokens', {name => 'dead'})->{json};
is($alice->api(DELETE => "tokens/$dead->{id}")->{status}, 204, 'a token revoked at once');
for my $req (['POST', 'tokens', '{"name":"x"}'], ['GET', 'tokens'], ['DELETE', 'tokens/1'],
    ['DELETE', 'auth'], ['POST', 'users/me/password', '{"password":"x","new_password":"yyyyyyyy"}'],
    ['GET', 'test'], ['POST', 'test', '{"name":"x"}'], ['GET', 'test/1'], ['POST', 'test/1/usage', '{}'],
    ['GET', 'test/1/usage'], ['POST', 'test/1/stop', '{}']) {
	my ($m, $path, $body) = @$req;
	unauthorized($s->api($m, $path, $body), "$m $path without a token");
	unauthorized($s->api($m, $path, $body, Authorization => "Bearer $dead->{token}"),
		"$m $path with a revoked token");
}
is_error($s->api(PUT => 'tokens'), 405, 'method_not_allowed', 'PUT /tokens: 405');
is_error($s->api(GET => 'tokens/1'), 405, 'method_not_allowed', 'GET /tokens/1: 405');
is_error($s->api(GET => 'auth'), 405, 'method_not_allowed', 'GET /auth: 405');

# --- nothing crashed, no token in the logs ------------------------------------------------

kill 'TERM', $pid2;
is(wait_exit($pid2, 10), 0, 'host 2 stopped cleanly on SIGTERM');
my $logs = join '', map { slurp($s->dir . "/$_") // '' } 'tracker.log', 'access.log';
ok(index($logs, (split /\./, $fresh->{json}{token})[2]) < 0, 'tokens do not appear in the logs');
$s->stop;
done_testing;
