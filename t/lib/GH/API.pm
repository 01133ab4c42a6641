package GH::API;

# The API client of GH::Stack (one of its parts, sharing its object): HTTP
# to the stack through nginx, users and their tokens, hand-made JWTs.
# Core Perl only.  It needs from the stack: url, host, port, dir, secret,
# psql and slow; it keeps its HTTP client in $self->{http}.
#
#   $s->api($method, $path, $body, %headers)  → {status, headers, content,
#                                               json, elapsed, reason}
#   $s->raw($bytes)                           a hand-made request
#   $s->parallel($n, sub { ... })             $n children at once
#   $s->register($user, $pass), $s->login($user, $pass)
#   $s->user(%opt)                            a GH::Stack::User, logged in
#   $s->as($token)                            a GH::Stack::User for a token
#   $s->jwt(\%payload, %opt), $s->jwt_claims($token), $s->token_row(...)
#   $s->reconnect                             a new HTTP client (after fork)
#
# A GH::Stack::User has id, username, password, token and api(...) (the
# stack's api() with its bearer token).

use strict;
use warnings;

use Carp qw(croak);
use Digest::SHA qw(hmac_sha256 hmac_sha384 hmac_sha512);
use HTTP::Tiny;
use IO::Socket::INET;
use MIME::Base64 qw(encode_base64url decode_base64url);
use POSIX ();
use Time::HiRes ();
use GH::Util qw(slurp json_encode json_decode random_hex);

# reconnect: a new HTTP client (a forked child must not share the parent's
# kept-alive connection).
sub reconnect {
	my $self = shift;
	$self->{http} = HTTP::Tiny->new(
		timeout => $self->scale(60),
		keep_alive => 1,
		agent => 'grasshopper-e2e/1',
	);
}

# api($method, $path, $body, %headers) → {status, headers, content, json,
# elapsed}.  $path without a leading '/' is relative to /api/v1/.  A
# reference body is sent as JSON (with Content-Type: application/json), a
# string as it is.
sub api {
	my ($self, $method, $path, $body, %h) = @_;
	$path = "/api/v1/$path" unless $path =~ m{^/};
	my %opt = (headers => {%h});
	if (ref $body) {
		$opt{content} = json_encode($body);
		$opt{headers}{'Content-Type'} //= 'application/json';
	} elsif (defined $body) {
		$opt{content} = $body;
	}
	my $t0 = Time::HiRes::time();
	my $r = $self->{http}->request($method, $self->url . $path, \%opt);
	my $res = {
		status => $r->{status},
		headers => $r->{headers},
		content => $r->{content} // '',
		elapsed => Time::HiRes::time() - $t0,
		reason => $r->{reason},
	};
	$res->{json} = eval { json_decode($res->{content}) };
	return $res;
}

# raw($bytes): send a hand-made request on a fresh connection and read the
# answer until the server closes; → same shape as api().
sub raw {
	my ($self, $req) = @_;
	my $sock = IO::Socket::INET->new(PeerAddr => $self->host,
		PeerPort => $self->port, Proto => 'tcp', Timeout => $self->scale(30))
		or croak "connect: $!";
	binmode $sock;
	my $off = 0;
	while ($off < length $req) {
		my $n = syswrite $sock, $req, 65536, $off;
		last unless $n;    # the server may answer and close early
		$off += $n;
	}
	shutdown $sock, 1;
	my $buf = '';
	local $SIG{ALRM} = sub { die "raw: timeout\n" };
	alarm POSIX::ceil($self->scale(30));
	while (sysread $sock, my $chunk, 65536) { $buf .= $chunk }
	alarm 0;
	my ($head, $content) = split /\r\n\r\n/, $buf, 2;
	my ($status) = ($head // '') =~ m{^HTTP/\d\.\d (\d+)};
	my %hdr;
	for (split /\r\n/, $head // '') {
		next unless /^([^:]+):\s*(.*)$/;
		$hdr{lc $1} = $2;
	}
	my $res = {status => $status // 0, headers => \%hdr,
		content => $content // '', sent => $off};
	$res->{json} = eval { json_decode($res->{content}) };
	return $res;
}

# parallel($n, $code): run $code->($i) for $i in 1..$n in $n child
# processes at once (each with its own connection); returns their results
# (JSON-encodable values) in order.  A child that dies returns undef.
sub parallel {
	my ($self, $n, $code) = @_;
	my @kids;
	for my $i (1 .. $n) {
		my $out = $self->dir . "/parallel-$$-$i.json";
		unlink $out;
		my $pid = fork // croak "fork: $!";
		if ($pid == 0) {
			$self->reconnect;
			my $r = eval { $code->($i) };
			if (open my $fh, '>', $out) {
				print $fh json_encode([$r]);
				close $fh;
			}
			POSIX::_exit(0);
		}
		push @kids, [$pid, $out];
	}
	my @res;
	for my $k (@kids) {
		waitpid $k->[0], 0;
		my $got = eval { json_decode(slurp($k->[1]) // '') };
		push @res, $got ? $got->[0] : undef;
		unlink $k->[1];
	}
	return @res;
}

# register($username, $password, %more) → api response.
sub register {
	my ($self, $user, $pass, %more) = @_;
	return $self->api(POST => 'users', {username => $user, password => $pass, %more});
}

# login($username, $password) → api response.
sub login {
	my ($self, $user, $pass) = @_;
	return $self->api(POST => 'auth', {username => $user, password => $pass});
}

# user(%opt): a fresh user, registered and logged in: a GH::Stack::User with
# {id, username, password, token}.  Croaks if either step fails.
my $user_seq = 0;
sub user {
	my ($self, %o) = @_;
	my $name = $o{username} // sprintf 'u%d_%d_%s', $$, ++$user_seq, random_hex(3);
	my $pass = $o{password} // 'pw-' . random_hex(8);
	my $r = $self->register($name, $pass);
	croak "register $name: $r->{status} $r->{content}" unless $r->{status} == 201;
	my $id = $r->{json}{id};
	$r = $self->login($name, $pass);
	croak "login $name: $r->{status} $r->{content}" unless $r->{status} == 200;
	return GH::Stack::User->new($self, id => $id, username => $name,
		password => $pass, token => $r->{json}{token});
}

# as($token): a GH::Stack::User for an arbitrary token.
sub as {
	my ($self, $token, %more) = @_;
	return GH::Stack::User->new($self, token => $token, %more);
}

# jwt(\%payload, key => SECRET, alg => 'HS256', header => \%h,
#     raw_header => JSON, raw_payload => JSON): a signed token.  The key
# defaults to the stack's secret; alg 'none' gives an empty signature.
sub jwt {
	my ($self, $payload, %o) = @_;
	my $alg = $o{alg} // 'HS256';
	my $key = exists $o{key} ? $o{key} : $self->secret;
	my $h = $o{raw_header} // json_encode($o{header} // {alg => $alg, typ => 'JWT'});
	my $p = $o{raw_payload} // json_encode($payload);
	my $input = encode_base64url($h) . '.' . encode_base64url($p);
	my %mac = (HS256 => \&hmac_sha256, HS384 => \&hmac_sha384, HS512 => \&hmac_sha512);
	my $sig = $alg eq 'none' ? '' : encode_base64url($mac{$alg}->($input, $key));
	return "$input.$sig";
}

# token_row($user_id, $exp, $name): a row in tokens for a token the test
# signs itself with jwt() (put its id in the jti claim: a token without a
# row is revoked); $exp in epoch seconds, default an hour from now, $name
# undef for a session.  Returns the id as a string.
sub token_row {
	my ($self, $user, $exp, $name) = @_;
	$exp //= int(time) + 3600;
	$user =~ /^\d+$/ && $exp =~ /^-?\d+$/ or croak "token_row: bad user or exp";
	my $n = defined $name ? "'" . ($name =~ s/'/''/gr) . "'" : 'NULL';
	return $self->psql("INSERT INTO tokens (user_id, name, expires_at) "
		. "VALUES ($user, $n, to_timestamp($exp)) RETURNING id");
}

# jwt_claims($token): the decoded payload of a token (no verification).
sub jwt_claims {
	my (undef, $token) = @_;
	my (undef, $p) = split /\./, $token;
	return eval { json_decode(decode_base64url($p)) };
}

# ---------------------------------------------------------------------------

package GH::Stack::User;

use Scalar::Util qw(weaken);

sub new {
	my ($class, $stack, %f) = @_;
	my $self = bless {%f, stack => $stack}, $class;
	weaken $self->{stack};
	return $self;
}

sub id { $_[0]{id} }
sub username { $_[0]{username} }
sub password { $_[0]{password} }
sub token { $_[0]{token} }

# api(...): the stack's api() with this user's bearer token.
sub api {
	my ($self, $method, $path, $body, %h) = @_;
	return $self->{stack}->api($method, $path, $body,
		Authorization => "Bearer $self->{token}", %h);
}

1;
