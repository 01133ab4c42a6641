# POST /api/v1/users and POST /api/v1/auth (SPEC 3, docs/architecture.md).
use strict;
use warnings;
use utf8;

use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(decode_base64url encode_base64url);
use Test::More;
use GH::Stack qw(is_error is_json_ok is_num fresh parse_ts json_decode slurp);

my $s = GH::Stack->new->start;
my $TS_RE = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{6})?Z$/;
my @passwords;    # every plaintext used, to look for in logs and tables

sub reg {
	my ($u, $p, %more) = @_;
	push @passwords, $p if defined $p && !ref $p && length $p >= 8;
	return $s->register($u, $p, %more);
}

# --- registration ----------------------------------------------------------

my $r = reg('alice_1.x-Y', 'pass-8ch');
is_json_ok($r, 201, 'register: 201 with JSON');
my $f = fresh($r);
ok(is_num($f->{id}) && $f->{id} > 0, 'register: id is a positive number');
is($r->{json}{username}, 'alice_1.x-Y', 'register: username echoed');
ok(!grep({ /pass|hash/i } keys %{ $r->{json} }), 'register: no password or hash in the answer');

# username length 1, 64, 65, 0
is(reg('a', 'password1')->{status}, 201, 'username of 1 character');
is(reg('b' x 64, 'password1')->{status}, 201, 'username of 64 characters');
is_error(reg('c' x 65, 'password1'), 400, 'invalid_field', 'username of 65 characters',
	field => 'username');
is_error(reg('', 'password1'), 400, 'invalid_field', 'empty username', field => 'username');

# username charset [A-Za-z0-9_.-]
is(reg('AZaz09_.-', 'password1')->{status}, 201, 'username with every allowed class');
is(reg('.', 'password1')->{status}, 201, 'username "."');
is(reg('-_-', 'password1')->{status}, 201, 'username "-_-"');
for my $bad ('with space', 'at@sign', 'slash/x', 'ü', 'tab	x', 'semi;colon', 'plus+',
    "quote'x", "nul\x{0}x", 'emoji😀', '<b>', 'percent%41', ' lead', 'trail ', "nl\n",
    'é' x 10, 'x,y', 'back\\slash') {
	(my $show = $bad) =~ s/([^\x20-\x7e])/sprintf '\\x{%x}', ord $1/ge;
	is_error(reg($bad, 'password1'), 400, 'invalid_field', "username '$show' refused",
		field => 'username');
}
is_error(reg(42, 'password1'), 400, 'invalid_field', 'username as a number', field => 'username');
is_error($s->api(POST => 'users', {username => undef, password => 'password1'}),
	400, 'invalid_field', 'username null', field => 'username');
is_error($s->api(POST => 'users', {password => 'password1'}),
	400, 'invalid_field', 'username missing', field => 'username');
is_error($s->api(POST => 'users', {username => ['x'], password => 'password1'}),
	400, 'invalid_field', 'username as an array', field => 'username');

# password: 8-1024 bytes (bytes, not characters)
is_error(reg('pw7', '1234567'), 400, 'invalid_field', 'password of 7 bytes', field => 'password');
is(reg('pw8', 'pass-8ch')->{status}, 201, 'password of 8 bytes');
is(reg('pw1024', 'p' x 1024)->{status}, 201, 'password of 1024 bytes');
is_error(reg('pw1025', 'p' x 1025), 400, 'invalid_field', 'password of 1025 bytes',
	field => 'password');
is_error(reg('pwmb7', 'ééé' . 'a'), 400, 'invalid_field',
	'password of 4 characters but 7 bytes', field => 'password');
is(reg('pwmb8', 'éééé')->{status}, 201, 'password of 4 characters, 8 bytes');
is(reg('pwmb1024', 'é' x 512)->{status}, 201, 'password of 512 characters, 1024 bytes');
is_error(reg('pwmb1025', 'é' x 512 . 'a'), 400, 'invalid_field',
	'password of 513 characters, 1025 bytes', field => 'password');
is_error(reg('pwnum', 12345678), 400, 'invalid_field', 'password as a number', field => 'password');
is_error($s->api(POST => 'users', {username => 'pwnull', password => undef}),
	400, 'invalid_field', 'password null', field => 'password');
is_error($s->api(POST => 'users', {username => 'pwmissing'}),
	400, 'invalid_field', 'password missing', field => 'password');
is($s->login('pwmb8', 'éééé')->{status}, 200, 'login with a multibyte password');
is($s->login('pw1024', 'p' x 1024)->{status}, 200, 'login with a 1024-byte password');

# email: optional; one '@', text on both sides, no spaces/controls, <= 254
is(reg('em1', 'password1', email => 'a@b.c')->{status}, 201, 'email a@b.c');
is(reg('em254', 'password1', email => ('x' x 248) . '@b.com')->{status}, 201,
	'email of 254 characters');
my $i = 0;
for my $bad ('no-at.example', 'two@@x.y', 'a@b@c', '@b.c', 'a@', 'a b@c.d', "a\@b\n",
    "a\t\@b.c", ('x' x 249) . '@b.com', '', '@') {
	(my $show = $bad) =~ s/([^\x20-\x7e])/sprintf '\\x{%x}', ord $1/ge;
	$show = substr($show, 0, 20) . '...' if length $show > 24;
	is_error(reg('embad' . $i++, 'password1', email => $bad), 400, 'invalid_field',
		"email '$show' refused", field => 'email');
}
is_error(reg('emnum', 'password1', email => 5), 400, 'invalid_field', 'email as a number',
	field => 'email');
is_error($s->api(POST => 'users', {username => 'emnull', password => 'password1', email => undef}),
	400, 'invalid_field', 'email null is a wrong type, not "no email"', field => 'email');
is($s->login('embad0', 'password1')->{status}, 401, 'a refused registration created no user');

# unknown fields are refused, naming the field
is_error($s->api(POST => 'users', {username => 'nick', password => 'password1', nickname => 'n'}),
	400, 'invalid_field', 'unknown field refused', field => 'nickname');
is($s->login('nick', 'password1')->{status}, 401, '... and no user was created');

# any Content-Type: the body is JSON regardless
$r = $s->api(POST => 'users', '{"username":"ctype","password":"password1"}',
	'Content-Type' => 'text/plain');
is($r->{status}, 201, 'registration with Content-Type text/plain');
$r = $s->api(POST => 'users', '{"username":"noctype","password":"password1"}');
is($r->{status}, 201, 'registration without Content-Type');

# --- uniqueness, case-insensitive --------------------------------------------

is(reg('Carol', 'carol-pass')->{status}, 201, 'register Carol');
is_error(reg('Carol', 'other-pass'), 409, 'username_taken', 'Carol again: 409');
is_error(reg('carol', 'other-pass'), 409, 'username_taken', 'carol (other case): 409');
is_error(reg('CAROL', 'other-pass'), 409, 'username_taken', 'CAROL: 409');
is_error(reg('ALICE_1.X-y', 'other-pass'), 409, 'username_taken', 'alice in other case: 409');
is($s->login('Carol', 'carol-pass')->{status}, 200, 'Carol logs in with her password');
is($s->login('Carol', 'other-pass')->{status}, 401, 'the refused duplicate did not change her password');
is($s->login('carol', 'carol-pass')->{status}, 401, 'logging in uses the exact name (carol: 401)');

# the same name registered from 4 connections at once: one wins
my @st = sort map { $_ // 'died' } $s->parallel(4, sub {
	my $r = $s->register($_[0] % 2 ? 'Racer' : 'racer', "racer-password-$_[0]");
	return $r->{status} == 409 ? "409 $r->{json}{error}" : $r->{status};
});
is_deeply(\@st, [201, ('409 username_taken') x 3], 'concurrent registrations of one name: one 201, three 409');

# --- auth ------------------------------------------------------------------

$r = reg('dave', 'dave-password');
my $dave_id = $r->{json}{id};
$r = $s->login('dave', 'dave-password');
is_json_ok($r, 200, 'auth: 200 with JSON');
my $tok = $r->{json}{token};
like($tok // '', qr/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'auth: token is a JWT');
like($r->{json}{expires_at} // '', $TS_RE, 'auth: expires_at in the response format');
my ($h64, $p64, $sig) = split /\./, $tok // '';
my $hdr = eval { json_decode(decode_base64url($h64)) } || {};
my $claims = eval { json_decode(decode_base64url($p64)) } || {};
is($hdr->{alg}, 'HS256', 'token: alg HS256');
is($sig, encode_base64url(hmac_sha256("$h64.$p64", $s->secret)),
	'token: signed with the server secret');
is("" . ($claims->{sub} // ''), "$dave_id", 'token: sub is the user id');
my $now = time;
ok(defined $claims->{iat} && abs($claims->{iat} - $now) <= 5, 'token: iat is now');
is(($claims->{exp} // 0) - ($claims->{iat} // 0), 30 * 86400, 'token: default lifetime 30 days');
is(parse_ts($r->{json}{expires_at}), ($claims->{exp} // 0) * 1_000_000,
	'auth: expires_at is the token exp');
is($s->as($tok)->api(GET => 'test')->{status}, 200, 'the token authenticates');

# 401: same message for an unknown user and a wrong password
my $wrong = $s->login('dave', 'not-daves-password');
my $unknown = $s->login('nobody_here', 'dave-password');
is_error($wrong, 401, 'unauthorized', 'auth: wrong password 401');
is_error($unknown, 401, 'unauthorized', 'auth: unknown user 401');
is($unknown->{content}, $wrong->{content}, 'auth: unknown user and wrong password answer the same body');
is_error($s->login('Dave', 'dave-password'), 401, 'unauthorized', 'auth: name in other case 401');
is_error($s->login('dave', 'dave-passwor'), 401, 'unauthorized', 'auth: password prefix 401');
is_error($s->login('dave', 'dave-password '), 401, 'unauthorized', 'auth: password plus space 401');

# both 401s take as long (unknown users are checked against a dummy hash)
my (@tw, @tu);
for (1 .. 5) {
	push @tw, $s->login('dave', "wrong-$_-password")->{elapsed};
	push @tu, $s->login("ghost$_", "wrong-$_-password")->{elapsed};
}
my ($mw) = (sort { $a <=> $b } @tw)[2];
my ($mu) = (sort { $a <=> $b } @tu)[2];
ok($mu >= 0.5 * $mw, sprintf 'auth: unknown user takes as long as a wrong password '
	. '(median %.1f ms vs %.1f ms)', $mu * 1000, $mw * 1000);

is_error($s->api(POST => 'auth', {username => 'dave'}), 400, 'invalid_field',
	'auth: password missing', field => 'password');
is_error($s->api(POST => 'auth', {password => 'dave-password'}), 400, 'invalid_field',
	'auth: username missing', field => 'username');
is_error($s->api(POST => 'auth', {username => 'dave', password => 12345678}), 400,
	'invalid_field', 'auth: password as a number', field => 'password');
is_error($s->api(POST => 'auth', {username => 'dave', password => 'dave-password', x => 1}),
	400, 'invalid_field', 'auth: unknown field', field => 'x');
is_error($s->api(POST => 'auth', 'username=dave&password=dave-password'), 400, 'invalid_json',
	'auth: form-encoded body is not JSON');
is_error($s->api(POST => 'auth', '["dave","dave-password"]'), 400, 'invalid_json',
	'auth: array body');

# --- storage: only a slow salted hash ----------------------------------------

reg('erin', 'carol-pass');    # same password as Carol
my @tables = split /\n/, $s->psql(
	"SELECT quote_ident(table_name) FROM information_schema.tables "
	. "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'");
my $dump = join "\n", map { $s->psql("SELECT row_to_json(t)::text FROM $_ t") } @tables;
my @leaked = grep { index($dump, $_) >= 0 } @passwords;
is(scalar @leaked, 0, 'no plaintext password in any table') or diag "leaked: @leaked";
my @hashes = $dump =~ /(\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+\/]+\$[A-Za-z0-9+\/]+)/g;
my $users = () = $dump =~ /"username":/g;
is(scalar @hashes, $users, 'every user has an argon2id hash (t=2, m=19 MiB)');
my %seen;
is(scalar(grep { !$seen{$_}++ } @hashes), scalar @hashes, 'hashes are salted (all distinct)');

# --- logs carry neither passwords nor tokens ---------------------------------

my $logs = join '', map { slurp($_) // '' }
	map { $s->dir . "/$_" } 'tracker.log', 'access.log', 'error.log', 'pg/postgres.log';
@leaked = grep { index($logs, $_) >= 0 } @passwords, $tok;
is(scalar @leaked, 0, 'no password or token in the logs') or diag "leaked: @leaked";

$s->stop;
done_testing;
