# How grasshopper reaches the tracker (SPEC section 4, delivery): plain
# http:// is spoken by the client itself, over one kept-alive connection,
# without loading libcurl; a tracker closing that connection, or a name to
# resolve, changes nothing; https:// and proxies go through libcurl, loaded
# then, with the certificate checked.
use strict;
use warnings;

use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);
use GH::Client qw(gh_run tiles_ok wait_for slurp);
use GH::Stack;

my $GH = ($ENV{GH_BUILDDIR} || '.') . '/grasshopper';
plan skip_all => "no client at $GH" unless -x $GH;

# Proxy variables of whoever runs the tests would send everything through
# libcurl; the proxy case below sets its own.
delete @ENV{qw(http_proxy all_proxy ALL_PROXY https_proxy HTTPS_PROXY no_proxy NO_PROXY)};

my $s = GH::Stack->new->start;
my $u = $s->user;
my $tmp = tempdir('gh-client-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my (@outputs, @children);

sub gh {
	gh_run(bin => $GH, tmp => $tmp, server => $s->url, token => $u->token,
		spool => "$tmp/spool", outputs => \@outputs, @_);
}

sub summary_id { $_[0]{stderr} =~ /^grasshopper: test (\d+): .*, (\d+) samples?, exit \d+, (\S+)$/m ? ($1, $2, $3) : () }

# delivered_ok($r, $iv, $what): the run reached the tracker whole.
sub delivered_ok {
	my ($r, $iv, $what) = @_;
	my ($id, $n) = summary_id($r);
	ok($id, "$what: the summary names the test") or return diag $r->{stderr};
	my $t = $u->api(GET => "test/$id")->{json};
	my $xs = $u->api(GET => "test/$id/usage?limit=10000")->{json}{samples} || [];
	is($t->{samples}, $n, "$what: the tracker has the client's $n samples");
	tiles_ok($t, $xs, $iv, "$what: tiling the run");
	unlike($r->{stderr}, qr/not answering|not delivered/, "$what: no delivery trouble reported")
		or diag $r->{stderr};
}

# The shared objects process $pid has mapped, by file name.
sub mapped {
	my %so = map { m{/([^/\s]+\.so[.\d]*)$} ? ($1 => 1) : () } split /\n/, slurp("/proc/$_[0]/maps");
	return \%so;
}

# Whether libNAME.so* is among them.
sub has_lib { my ($so, $name) = @_; scalar grep { /^\Q$name\E\.so/ } keys %$so }

# A run of `sleep $secs` at -i $iv whose mappings are read once the
# tracker has answered: → ($result, \%mapped).
sub run_mapped {
	my ($secs, $iv, %o) = @_;
	my $so = {};
	my $r = gh(%o, args => ['-i', $iv, 'sleep', $secs], during => sub {
		wait_for($_[0], 'sleep') and sleep 1;
		$so = mapped($_[0]);
	});
	return ($r, $so);
}

# relay(to => PORT, answer_once => 1): a TCP relay on loopback to PORT in a
# child process: → (its port, the directory where the bytes each client
# sent land, one file per connection). answer_once: a connection that
# carried an answer is closed, unanswered, when the next request comes,
# as a tracker closing a kept-alive connection just as it is reused.
sub relay {
	my %o = @_;
	my $dir = tempdir(DIR => $tmp);
	my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
		Proto => 'tcp', Listen => 16, ReuseAddr => 1) or die "listen: $!";
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		# Never back into the test's END blocks (temp dirs, the stack).
		eval { relay_run($l, $dir, %o) };
		warn $@ if $@;
		POSIX::_exit(1);
	}
	push @children, $pid;
	my $port = $l->sockport;
	close $l;
	return ($port, $dir);
}

sub relay_run {
	my ($l, $dir, %o) = @_;
	my $sel = IO::Select->new($l);
	my ($n, %peer, %log, %answered) = (0);
	my $drop = sub {
		my $fh = shift;
		my $other = delete $peer{fileno $fh};
		for ($fh, $other ? $other : ()) {
			delete $peer{fileno $_};
			delete $log{fileno $_};
			delete $answered{fileno $_};
			$sel->remove($_);
			close $_;
		}
	};
	while (1) {
		for my $fh ($sel->can_read(1)) {
			if ($fh == $l) {
				my $c = $l->accept or next;
				my $up = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
					PeerPort => $o{to}, Proto => 'tcp') or do { close $c; next };
				open my $lg, '>', "$dir/conn-" . ++$n or die;
				$lg->autoflush(1);
				$peer{fileno $c} = $up;
				$peer{fileno $up} = $c;
				$log{fileno $c} = $lg;
				$sel->add($c, $up);
				next;
			}
			my $other = $peer{fileno $fh} or next;
			my $got = sysread $fh, my $buf, 65536;
			if (!$got) {
				$drop->($fh);
				next;
			}
			if (my $lg = $log{fileno $fh}) {    # from the client
				if ($o{answer_once} && $answered{fileno $fh}) {
					$drop->($fh);
					next;
				}
				print $lg $buf;
			} else {
				$answered{fileno $other} = 1;
			}
			syswrite $other, $buf;
		}
	}
}

# What the clients sent through a relay: one string per connection.
sub relayed { map { slurp($_) } sort glob "$_[0]/conn-*" }

# --- plain http: the client's own, one kept-alive connection -------------

my ($port, $dir) = relay(to => $s->port);
my ($r, $so) = run_mapped(3, 0.2, env => {GRASSHOPPER_SERVER => "http://127.0.0.1:$port"});
delivered_ok($r, 0.2, 'plain http');
ok(!grep(/^lib(curl|ssl|crypto|gnutls)\b/, keys %$so),
	'plain http loads neither libcurl nor a TLS library')
	or diag join ' ', sort keys %$so;
my @conns = relayed($dir);
is(scalar @conns, 1, 'one connection for the whole run');
my @requests = ($conns[0] // '') =~ m{(?:GET|POST) /\S* HTTP/1\.1\r\n}g;
ok(@requests >= 4, scalar(@requests) . ' requests on it');
like($conns[0] // '', qr{\APOST /api/v1/test HTTP/1\.1\r\n}, 'the first creates the test');
like($conns[0] // '', qr{^Host: 127\.0\.0\.1:$port\r$}m, 'Host: as in the URL');
like($conns[0] // '', qr{^User-Agent: grasshopper/\S+\r$}m, 'User-Agent: grasshopper');
like($conns[0] // '', qr{^Content-Length: \d+\r$}m, 'a Content-Length');
unlike($conns[0] // '', qr{^Expect:}mi, 'no Expect: 100-continue');

# --- the tracker closes the kept-alive connection as it is reused --------

($port, $dir) = relay(to => $s->port, answer_once => 1);
$r = gh(args => ['-i', '0.2', 'sleep', '3'], env => {GRASSHOPPER_SERVER => "http://127.0.0.1:$port"});
delivered_ok($r, 0.2, 'a connection closed under the next request');
@conns = relayed($dir);
ok(@conns >= 4, scalar(@conns) . ' connections: the request went again on a fresh one');

# --- a name to resolve (in a thread: a slow DNS never delays sampling) ---

$r = gh(args => ['-i', '0.2', 'sleep', '2'], env => {GRASSHOPPER_SERVER => 'http://localhost:' . $s->port});
delivered_ok($r, 0.2, 'http://localhost');
$r = gh(args => ['-i', '0.2', 'sleep', '1'],
	env => {GRASSHOPPER_SERVER => 'http://no-such-host.invalid:' . $s->port, GRASSHOPPER_FLUSH_TIMEOUT => 0.5});
like($r->{stderr}, qr/^grasshopper: tracker \S+ not answering \((?:Could not resolve host: no-such-host\.invalid|Resolving timed out)/m,
	'a name that does not resolve is reported');
like($r->{stderr}, qr/not delivered, saved in/, 'and the samples are spooled');

# --- through a proxy: libcurl -----------------------------------------------

($port, $dir) = relay(to => $s->port);
($r, $so) = run_mapped(2, 0.2, env => {http_proxy => "http://127.0.0.1:$port"});
delivered_ok($r, 0.2, 'http_proxy');
ok(has_lib($so, 'libcurl'), 'a proxy is libcurl\'s business: it is loaded');
my $url = $s->url;
like(join('', relayed($dir)), qr{^POST \Q$url\E/api/v1/test HTTP/1\.1\r$}m,
	'the requests went through the proxy');

# --- https: libcurl, the certificate checked ---------------------------------

SKIP: {
	skip 'no nginx or openssl for an https front', 9
		unless !system('command -v nginx openssl >/dev/null');
	my $tls = "$tmp/tls";
	mkdir $tls;
	my $ssl = sub { system("openssl @_ >>$tls/openssl.log 2>&1") == 0 or die "openssl @_ failed" };
	$ssl->("req -x509 -newkey rsa:2048 -nodes -keyout $tls/ca.key -out $tls/ca.crt -days 1 -subj /CN=grasshopper-test-ca");
	$ssl->("req -newkey rsa:2048 -nodes -keyout $tls/srv.key -out $tls/srv.csr -subj /CN=127.0.0.1");
	open my $ext, '>', "$tls/ext" or die;
	print $ext "subjectAltName=IP:127.0.0.1\n";
	close $ext;
	$ssl->("x509 -req -in $tls/srv.csr -CA $tls/ca.crt -CAkey $tls/ca.key -CAcreateserial -days 1 -extfile $tls/ext -out $tls/srv.crt");

	my $hport = GH::Stack::_free_port();
	open my $conf, '>', "$tls/nginx.conf" or die;
	print $conf ($> == 0 ? "user root;\n" : ''), <<"EOF";
worker_processes 1;
pid $tls/nginx.pid;
error_log $tls/error.log warn;
daemon off;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path $tls/body;
	proxy_temp_path $tls/proxy;
	fastcgi_temp_path $tls/fastcgi;
	uwsgi_temp_path $tls/uwsgi;
	scgi_temp_path $tls/scgi;
	server {
		listen 127.0.0.1:$hport ssl;
		ssl_certificate $tls/srv.crt;
		ssl_certificate_key $tls/srv.key;
		location / {
			proxy_pass $url;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
}
EOF
	close $conf;
	my $npid = fork // die;
	if ($npid == 0) {
		open STDOUT, '>', "$tls/nginx.out";
		open STDERR, '>&', \*STDOUT;
		exec 'nginx', '-p', $tls, '-c', "$tls/nginx.conf", '-e', "$tls/error.log" or POSIX::_exit(99);
	}
	push @children, $npid;
	my $deadline = time + 10;
	sleep 0.05 until time > $deadline
		|| IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $hport, Proto => 'tcp');
	my $https = "https://127.0.0.1:$hport";

	# Not signed by a CA the system trusts: refused, and spooled.
	$r = gh(args => ['-i', '0.2', 'sleep', '1'],
		env => {GRASSHOPPER_SERVER => $https, GRASSHOPPER_FLUSH_TIMEOUT => 0.5});
	is($r->{status}, 0, 'https with an untrusted certificate: the command\'s status');
	like($r->{stderr}, qr/^grasshopper: tracker \Q$https\E not answering \(.*certificate/m,
		'the certificate is checked (and refused)') or diag $r->{stderr};
	like($r->{stderr}, qr/not delivered, saved in/, 'the samples are spooled');

	# Trusted: the test CA as the system's bundle, in a private mount
	# namespace (root only).
	skip 'trusting a test CA needs root and unshare -m', 6
		unless $> == 0 && !system('unshare -m --propagation private true 2>/dev/null');
	my $bundle = '/etc/ssl/certs/ca-certificates.crt';
	skip "no $bundle to stand in for", 6 unless -f $bundle;
	my $so = {};
	$r = gh_run(bin => 'unshare', tmp => $tmp, server => $https, token => $u->token,
		spool => "$tmp/spool", outputs => \@outputs,
		args => ['-m', '--propagation', 'private', 'sh', '-c',
			'mount --bind "$0" "$1" && shift && exec "$@"',
			"$tls/ca.crt", $bundle, $GH, '-i', '0.2', 'sleep', '3'],
		during => sub {
			wait_for($_[0], 'sleep') and sleep 1;
			$so = mapped($_[0]);
		});
	delivered_ok($r, 0.2, 'https');
	ok(has_lib($so, 'libcurl'), 'https goes through libcurl');
	my (undef, undef, $page) = summary_id($r);
	like($page // '', qr{^\Q$https\E/#/test/\d+$}, 'the summary links the https page');
}

kill 'TERM', @children;
waitpid $_, 0 for @children;
my $token = $u->token;
ok(!grep({ index($_, $token) >= 0 } @outputs), 'the token never appears in any output');
ok(!grep({ /Sanitizer|runtime error:/ } @outputs), 'no sanitizer report from grasshopper');
$s->stop;
done_testing;
