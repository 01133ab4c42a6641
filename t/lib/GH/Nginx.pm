package GH::Nginx;

# The nginx part of GH::Stack (sharing its object): nginx in front of the
# tracker's socket, configured from the one template
# (nginx/grasshopper.conf.in), listening on loopback.  Core Perl only.  Its
# keys: host, port, auth_rate, auth_burst (set by GH::Stack::new),
# nginx_pid.  It uses the stack's dir, srcdir, sock, scale, _spawn and
# _fail_start.
#
#   $s->start_nginx, $s->stop_nginx    stop and start it alone (the tracker
#                                      and PostgreSQL keep running)
#   $s->reload_nginx                   SIGHUP: reread nginx.conf
#   $s->url, $s->host, $s->port        where it listens
#   $s->nginx_problems                 [alert]/[emerg] lines of error.log

use strict;
use warnings;

use Carp qw(croak);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);
use GH::Util qw(slurp free_port as_root wait_exit);

sub host { $_[0]{host} }

sub port { $_[0]{port} }

sub url { "http://$_[0]{host}:$_[0]{port}" }

# reload_nginx: SIGHUP to nginx's master (the one nginx.pid names, which
# must be ours); true when sent. nginx rereads nginx.conf, starts new
# workers and lets the old ones finish their connections.
sub reload_nginx {
	my $self = shift;
	my $master = slurp("$self->{dir}/nginx.pid") // '';
	$master =~ s/\s+//g;
	return $master =~ /^\d+$/ && $self->{nginx_pid} && $master == $self->{nginx_pid}
		&& kill 'HUP', $master;
}

sub _write_nginx_conf {
	my $self = shift;
	my $tpl = slurp("$self->{srcdir}/nginx/grasshopper.conf.in")
		// croak "no nginx template in $self->{srcdir}/nginx";
	my %v = (
		PREFIX => $self->{dir},
		LISTEN => "$self->{host}:$self->{port}",
		HTML => "$self->{srcdir}/html",
		FASTCGI => "unix:$self->{sock}",
		USER => as_root() ? 'user root;' : '',
		AUTH_RATE => $self->{auth_rate},
		AUTH_BURST => $self->{auth_burst},
		ERRORS => "$self->{srcdir}/nginx/errors.conf",
	);
	$tpl =~ s/%%(\w+)%%/exists $v{$1} ? $v{$1} : croak "unknown placeholder %%$1%%"/ge;
	open my $fh, '>', "$self->{dir}/nginx.conf" or croak "nginx.conf: $!";
	print $fh $tpl;
	close $fh;
}

# start_nginx: start nginx on the stack's port (a free one, chosen the first
# time unless new() was given one); croaks when it does not start.
sub start_nginx {
	my $self = shift;
	my $fixed = defined $self->{port};
	for my $try (1 .. 5) {
		$self->{port} = free_port() unless $fixed;
		$self->_write_nginx_conf;
		unlink "$self->{dir}/nginx.pid";
		my $log = "$self->{dir}/error.log";
		my $pid = $self->_spawn("$self->{dir}/nginx.out", {},
			'nginx', '-p', $self->{dir}, '-c', "$self->{dir}/nginx.conf",
			'-e', $log);
		my $deadline = time + $self->scale(10);
		while (time < $deadline) {
			if (waitpid($pid, WNOHANG) > 0) {
				$pid = undef;
				last;
			}
			if (-s "$self->{dir}/nginx.pid" && IO::Socket::INET->new(
			    PeerAddr => $self->{host}, PeerPort => $self->{port},
			    Proto => 'tcp')) {
				$self->{nginx_pid} = $pid;
				return 1;
			}
			sleep 0.02;
		}
		kill 'KILL', -$pid if $pid;
		waitpid $pid, 0 if $pid;
		# Lost a race for the port: forget the [emerg] and try another.
		my $err = slurp($log) // '';
		last if $fixed || $err !~ /bind\(\) to .* failed/;
		rename $log, "$log.try$try";
	}
	$self->_fail_start('nginx did not start');
}

# stop_nginx: QUIT to nginx, wait for it to exit (SIGKILL after a while);
# start_nginx starts it again on the same port.
sub stop_nginx {
	my $self = shift;
	my $pid = delete $self->{nginx_pid} or return;
	kill 'QUIT', $pid;
	return if defined wait_exit($pid, 10);
	kill 'KILL', -$pid;
	waitpid $pid, 0;
}

# nginx_problems: the [alert] and [emerg] lines of nginx's error.log.
sub nginx_problems {
	my $self = shift;
	my $elog = slurp("$self->{dir}/error.log") // '';
	return grep /\[(?:alert|emerg)\]/, split /\n/, $elog;
}

1;
