# The driver of script/server: start the stack of t/lib/GH/Stack.pm in its
# persistent mode under var/, print how to use it, stop it on SIGINT/SIGTERM.
use strict;
use warnings;

use Fcntl qw(:flock);
use GH::Stack qw(slurp);

my $root = shift // '.';
my $var = "$root/var";
my $host = $ENV{HOST} || '127.0.0.1';
my $port = $ENV{PORT} || 5000;

# One server per var/: a second one would stop the first one's database.
open my $lock, '>', "$var/server.lock" or die "script/server: $var/server.lock: $!\n";
flock $lock, LOCK_EX | LOCK_NB
	or die "script/server: another script/server is running on $var\n";

my %env;
$env{TRACKER_TOKEN_TTL} = $ENV{TRACKER_TOKEN_TTL} if defined $ENV{TRACKER_TOKEN_TTL};
my $s = GH::Stack->new(
	dir => $var,
	host => $host,
	port => $port,
	workers => $ENV{TRACKER_WORKERS} || 2,
	auth_rate => $ENV{AUTH_RATE} || '10r/s',
	auth_burst => $ENV{AUTH_BURST} // 20,
	env => \%env,
);

my $stop = 0;
$SIG{INT} = $SIG{TERM} = $SIG{HUP} = sub { $stop = 1 };

# tails: the last lines of the logs, for a failed start.
sub tails {
	for my $log ("$var/error.log", "$var/tracker.log", "$var/setup.log", "$var/pg/postgres.log") {
		next unless -s $log;
		my @l = split /\n/, slurp($log);
		print STDERR "--- $log\n", join("\n", @l[($#l > 9 ? $#l - 9 : 0) .. $#l]), "\n";
	}
}

print "script/server: starting PostgreSQL, the tracker and nginx in $var\n";
unless (eval { $s->start; 1 }) {
	print STDERR "script/server: could not start: $@";
	tails();
	print STDERR "script/server: is port $port free? (PORT=... script/server)\n"
		if (slurp("$var/error.log") // '') =~ /bind\(\)/;
	$s->stop(implicit => 1);
	exit 1;
}

my $url = $s->url;
my $build = $ENV{GH_BUILDDIR} // $root;
(my $client = "$build/grasshopper") =~ s{^\Q$root\E/}{./};
$client = 'grasshopper' unless -x "$build/grasshopper";
print <<"BANNER";

  grasshopper is running: $url/

  Sign up and get a token on the page, or with curl:

    curl -s $url/api/v1/users -d '{"username":"me","password":"correct horse"}'
    TOKEN=\$(curl -s $url/api/v1/auth -d '{"username":"me","password":"correct horse"}' \\
      | sed -n 's/.*"token":"\\([^"]*\\)".*/\\1/p')
    curl -s $url/api/v1/test -H "Authorization: Bearer \$TOKEN" -d '{"name":"demo"}'
    $client -j "\$TOKEN" -s $url -- sleep 3

  Logs: var/tracker.log, var/access.log, var/error.log, var/pg/postgres.log
  Data: var/pg (psql -h $var/pg -U postgres grasshopper)
  Ctrl-C stops everything.

BANNER

while (!$stop) {
	sleep 1;
	# wait_tracker(0): the tracker's wait status once it has exited.
	if (!$s->tracker_pid || defined $s->wait_tracker(0)) {
		print STDERR "script/server: the tracker exited; see var/tracker.log\n";
		$s->stop(implicit => 1);
		exit 1;
	}
}

print "\nscript/server: stopping\n";
$s->stop(implicit => 1);
print "script/server: stopped\n";
exit 0;
