package GH::Postgres;

# The PostgreSQL part of GH::Stack (sharing its object): a private
# PostgreSQL 15 cluster in $dir/pg, reached only through its socket there
# (no TCP), run as nobody when the tests run as root (initdb refuses root).
# Core Perl only.  Its keys: pgdir, pgdata, dbname (set by GH::Stack::new),
# pg_running.  It uses the stack's dir, persistent, _run, _spawn and
# _fail_start.
#
#   $s->psql($sql, db => NAME, user => ROLE)   run SQL, → its output
#   $s->psql_async($sql)                       in the background, → pid
#   $s->start_postgres, $s->stop_postgres($mode), $s->restart_postgres($mode)
#   $s->database_url, $s->service_database_url, $s->service_role
#   $s->pg_log                                 the server's log file

use strict;
use warnings;

use Carp qw(croak);
use File::Path qw(make_path);
use POSIX ();
use GH::Util qw(slurp append_file as_root);

my $PGBIN = '/usr/lib/postgresql/15/bin';
my $PGPORT = 5432;    # only names the socket file in our private directory

# database_url: as the owner of the schema (init-db, the superuser here);
# service_database_url: as the role `serve` runs as, which init-db grants
# reading and writing the tables but not changing them (SPEC 6.1).
sub database_url {
	my $self = shift;
	"host=$self->{pgdir} port=$PGPORT dbname=$self->{dbname} user=postgres";
}
our $SERVICE_ROLE = 'grasshopper_service';
sub service_role { $SERVICE_ROLE }
sub service_database_url {
	my $self = shift;
	"host=$self->{pgdir} port=$PGPORT dbname=$self->{dbname} user=$SERVICE_ROLE";
}

# The PostgreSQL tools, through runuser when we are root (initdb refuses).
sub _pg_cmd {
	my ($self, $tool, @args) = @_;
	my @cmd = ("$PGBIN/$tool", @args);
	unshift @cmd, 'runuser', '-u', 'nobody', '--' if as_root();
	return @cmd;
}

sub _init_postgres {
	my $self = shift;
	make_path($self->{pgdir});
	if (as_root()) {
		my (undef, undef, $uid, $gid) = getpwnam('nobody')
			or croak "no user nobody to run PostgreSQL as";
		chown $uid, $gid, $self->{pgdir};
		chown $uid, $gid, "$self->{pgdir}/postgres.log"
			if -e "$self->{pgdir}/postgres.log";
	}
	# Trust authentication, so only the cluster's user (and root) may enter
	# the directory of its socket.
	chmod 0700, $self->{pgdir};
	return if -e "$self->{pgdata}/PG_VERSION";
	$self->_run({}, $self->_pg_cmd('initdb', '-D', $self->{pgdata},
		'-A', 'trust', '-N', '-U', 'postgres', '-E', 'UTF8',
		'--locale=C')) == 0
		or $self->_fail_start('initdb failed');
	append_file("$self->{pgdata}/postgresql.conf", <<"EOF");

# grasshopper private cluster
listen_addresses = ''
unix_socket_directories = '$self->{pgdir}'
port = $PGPORT
shared_buffers = 32MB
max_connections = 64
EOF
	# A test's throwaway cluster need not survive a crash; the data that
	# script/server keeps under var/ must.
	append_file("$self->{pgdata}/postgresql.conf", <<"EOF") unless $self->{persistent};
fsync = off
full_page_writes = off
synchronous_commit = off
EOF
}

sub start_postgres {
	my $self = shift;
	# A cluster left running by a crashed persistent run: stop it first.
	if ($self->{persistent} &&
	    $self->_run({}, $self->_pg_cmd('pg_ctl', 'status', '-D', $self->{pgdata})) == 0) {
		$self->_run({}, $self->_pg_cmd('pg_ctl', 'stop', '-m', 'fast', '-w', '-D', $self->{pgdata}));
	}
	$self->_run({}, $self->_pg_cmd('pg_ctl', 'start', '-w', '-t', $self->_pg_wait,
		'-D', $self->{pgdata}, '-l', "$self->{pgdir}/postgres.log")) == 0
		or $self->_fail_start('pg_ctl start failed');
	$self->{pg_running} = 1;
	return 1;
}

sub stop_postgres {
	my ($self, $mode) = @_;
	return 1 unless $self->{pg_running};
	my $rc = $self->_run({}, $self->_pg_cmd('pg_ctl', 'stop', '-w', '-t', $self->_pg_wait,
		'-m', $mode || 'fast', '-D', $self->{pgdata}));
	$self->{pg_running} = 0 if $rc == 0;
	return $rc == 0;
}

# restart_postgres($mode): `pg_ctl restart -m $mode` (default fast) while
# everything else runs; true when pg_ctl succeeded.
sub restart_postgres {
	my ($self, $mode) = @_;
	return $self->_run({}, $self->_pg_cmd('pg_ctl', 'restart', '-w', '-t', $self->_pg_wait,
		'-m', $mode || 'fast', '-D', $self->{pgdata},
		'-l', "$self->{pgdir}/postgres.log")) == 0;
}

sub _create_database {
	my $self = shift;
	my $exists = $self->psql("SELECT 1 FROM pg_database WHERE datname = '$self->{dbname}'",
		db => 'postgres');
	$self->psql("CREATE DATABASE $self->{dbname}", db => 'postgres')
		unless $exists eq '1';
	# The service's login role: no superuser, owns nothing (trust
	# authentication in this private cluster: no password).
	$self->psql("DO \$\$BEGIN CREATE ROLE $SERVICE_ROLE LOGIN; "
		. "EXCEPTION WHEN duplicate_object THEN NULL; END\$\$", db => 'postgres');
}

# psql($sql, db => NAME, user => ROLE): run SQL as the cluster's superuser
# (or ROLE); returns the
# unaligned, tuples-only output (rows joined by "\n", fields by "|").
# Croaks when psql fails.
sub psql {
	my ($self, $sql, %o) = @_;
	my @cmd = ("$PGBIN/psql", '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
		'-h', $self->{pgdir}, '-p', $PGPORT, '-U', $o{user} || 'postgres',
		'-d', $o{db} || $self->{dbname}, '-c', $sql);
	my $errf = "$self->{dir}/psql.err";
	my $pid = open(my $fh, '-|') // croak "fork: $!";
	if ($pid == 0) {
		open STDERR, '>', $errf;
		exec @cmd or POSIX::_exit(127);
	}
	local $/;
	my $out = <$fh> // '';
	close $fh;
	if ($?) {
		my $err = -e $errf ? slurp($errf) : '';
		croak "psql failed ($sql): $err";
	}
	$out =~ s/\s+\z//;
	return $out;
}

# psql_async($sql): run psql in the background; returns its pid (reap with
# waitpid).
sub psql_async {
	my ($self, $sql) = @_;
	return $self->_spawn("$self->{dir}/psql-async.log", {},
		"$PGBIN/psql", '-X', '-q', '-v', 'ON_ERROR_STOP=1',
		'-h', $self->{pgdir}, '-p', $PGPORT, '-U', 'postgres',
		'-d', $self->{dbname}, '-c', $sql);
}

# _pg_wait: pg_ctl's -t, whole seconds.
sub _pg_wait { POSIX::ceil($_[0]->scale(60)) }

sub pg_log { "$_[0]{pgdir}/postgres.log" }

1;
