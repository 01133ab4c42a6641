#!/usr/bin/env bash
# make check-docker: the container deployment, for real.
#
# Builds the images from the committed Dockerfile, docker/ and
# docker-compose.yml, brings the stack up with Debian's docker-compose (v1)
# talking to podman's Docker-compatible API (no Docker engine and no
# registry are needed), and checks it from the outside as docs/deployment.md
# describes: health checks, registration through nginx, the containerised
# grasshopper client recording a run, the run read back through the API,
# the data surviving a full restart on the named volume, nginx finding a
# recreated tracker, TLS in the nginx image. And that it is safe by default
# (SPEC 6.1): it starts from a fresh copy with no .env, its secrets are
# generated, never printed, readable only by the services that need them
# and kept across restarts; the example secret is refused; the tracker
# serves as a database role that cannot change the schema; FastCGI is a
# unix socket only nginx shares; no container keeps a capability it does
# not need or a writable root; https answers with a certificate it checks.
# Everything it starts is torn down at the end, also on failure.
#
# Needs root (rootful podman) and Debian's archive (apt, debootstrap).
# The debootstrapped base image is cached in $GH_DOCKER_CACHE (default
# /var/cache/grasshopper), keyed by the date of bookworm's Release file.
#
# Output is TAP; exits non-zero when a check fails. GH_KEEP=1 leaves the
# stack running and the work directory in place for a look around.

# ok never fails, so "A && ok || not_ok" is if-then-else here; the Perl
# snippets in single quotes are meant literally; ls -t lists our own files.
# shellcheck disable=SC2015,SC2016,SC2012
set -euo pipefail

srcdir=$(cd "$(dirname "$0")/../.." && pwd)
cache=${GH_DOCKER_CACHE:-/var/cache/grasshopper}
mirror=${GH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${GH_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
t_start=$SECONDS

# ---- TAP ------------------------------------------------------------------
n=0
failed=0
ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}
# not_ok NAME [DETAIL...]: a failed check; the run stops here.
not_ok() {
	n=$((n + 1))
	failed=1
	echo "not ok $n - $1"
	shift
	local line
	for line in "$@"; do printf '# %s\n' "$line"; done
	exit 1
}
# check NAME CMD...: ok if CMD succeeds.
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name" "failed: $*"; fi
}
note() { printf '# %s\n' "$*"; }
elapsed() { echo "$((SECONDS - $1)) s"; }

if ((EUID != 0)); then
	echo "check-docker: needs root (the test runs podman rootful)" >&2
	exit 1
fi

# ---- tools ----------------------------------------------------------------
# podman's CNI network needs iptables, and the dnsname plugin for the
# containers to find each other by service name (podman does not pull it in
# without its recommends); curl and perl talk to the stack.
packages=(podman runc iptables golang-github-containernetworking-plugin-dnsname debootstrap
	docker-compose curl perl openssl)
missing=()
for p in "${packages[@]}"; do
	[[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" == ii* ]] ||
		missing+=("$p")
done
if ((${#missing[@]})); then
	note "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends "${missing[@]}" </dev/null >/dev/null
fi

# ---- private podman ---------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/gh-docker-XXXXXX")
project=ghcheck$$
sock=$work/podman.sock
service_pid=
ticker_pid=

export CONTAINERS_CONF=$work/containers.conf
export CONTAINERS_STORAGE_CONF=$work/storage.conf
export DOCKER_HOST=unix://$sock
export COMPOSE_HTTP_TIMEOUT=600
# Not the caller's .env or project: ours are explicit below.
unset COMPOSE_FILE COMPOSE_PROJECT_NAME

nofile=$(ulimit -Hn)
cat >"$CONTAINERS_CONF" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=32768:32768"]

[engine]
runtime = "runc"
EOF

# storage_conf DRIVER: graph and run roots in the work directory.
storage_conf() {
	cat >"$CONTAINERS_STORAGE_CONF" <<EOF
[storage]
driver = "$1"
graphroot = "$work/storage"
runroot = "$work/run"
EOF
}
storage_conf overlay
if ! podman info >"$work/podman-info.log" 2>&1; then
	note "overlay storage does not work here; using vfs (slower)"
	podman system reset --force >/dev/null 2>&1 || true
	storage_conf vfs
	podman info >"$work/podman-info.log" 2>&1 || {
		cat "$work/podman-info.log" >&2
		exit 1
	}
fi

# The stack runs from a fresh copy of the sources ($src) that has no .env:
# nothing in it is filled in by hand. Ports and the worker count come from
# the environment, as compose allows.
src=$work/src
compose() {
	docker-compose --project-directory "$src" -f "$src/docker-compose.yml" \
		-p "$project" "$@"
}
# compose_tls: the same with docker-compose.tls.yml (HTTPS) on top.
compose_tls() {
	docker-compose --project-directory "$src" -f "$src/docker-compose.yml" \
		-f "$src/docker-compose.tls.yml" -p "$project" "$@"
}

teardown() {
	local rc=$?
	set +e
	if ((rc != 0 || failed)) && [[ -S $sock ]]; then
		note "logs of the stack (last lines):"
		compose logs --no-color --tail=40 2>&1 | sed 's/^/#   /'
	fi
	if [[ -n "${GH_KEEP:-}" ]]; then
		note "GH_KEEP: stack left running; work directory $work"
		note "  export CONTAINERS_CONF=$CONTAINERS_CONF CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF DOCKER_HOST=$DOCKER_HOST"
		return
	fi
	[[ -n $ticker_pid ]] && kill "$ticker_pid" 2>/dev/null && wait "$ticker_pid" 2>/dev/null
	if [[ -S $sock ]]; then
		compose down --volumes --remove-orphans --timeout 20 >"$work/down.log" 2>&1
	fi
	[[ -n $service_pid ]] && kill "$service_pid" 2>/dev/null && wait "$service_pid" 2>/dev/null
	podman rm --all --force >/dev/null 2>&1
	podman system reset --force >/dev/null 2>&1
	# conmon lingers up to 5 minutes after an exec session (compose exec);
	# ours are the ones whose command line names our work directory.
	grep -lsF -- "$work/" /proc/[0-9]*/cmdline | cut -d/ -f3 |
		while read -r pid; do kill "$pid" 2>/dev/null; done
	# Whatever podman left mounted under the work directory.
	awk -v w="$work" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r |
		while read -r m; do umount -l "$m"; done
	rm -rf "$work"
	echo "# check-docker: $((SECONDS - t_start)) s in all"
}
trap teardown EXIT
trap 'exit 130' INT TERM

# ---- the base image: debian:bookworm-slim from Debian's archive -----------
# Like the registry's image: debootstrap --variant=minbase, then what makes
# it "slim" (no docs, man pages or translations; apt lists and caches
# cleaned) and the same apt sources (bookworm, -updates, -security).
make_rootfs() {
	local root=$1
	debootstrap --variant=minbase bookworm "$root" "$mirror" \
		>"$work/debootstrap.log" 2>&1 || {
		tail -n 20 "$work/debootstrap.log" >&2
		return 1
	}
	cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
# As in Debian's slim images: no documentation or translations.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
	find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
	find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
	rm -rf "$root"/usr/share/{groff,info,linda,lintian,locale,man}/*
	cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
	echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
	echo 'Acquire::GzipIndexes "true";' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
	rm -f "$root/etc/apt/sources.list"
	cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security_mirror
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
	rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* \
		"$root"/var/log/*.log "$root"/var/log/apt/* "$root"/tmp/*
	echo "debian:bookworm-slim, made by grasshopper's t/docker/check.sh" \
		>"$root/etc/hostname"
}

# base_image: import the cached rootfs (made again when bookworm's Release
# file has a new date, i.e. at a point release) as debian:bookworm-slim.
base_image() {
	mkdir -p "$cache"
	local date key tar
	date=$(curl -fsS --max-time 20 "$mirror/dists/bookworm/Release" 2>/dev/null |
		sed -n 's/^Date: //p') || date=
	if [[ -n $date ]]; then
		key=$(date -u -d "$date" +%Y%m%d 2>/dev/null || echo unknown)
		tar=$cache/debian-bookworm-slim-$key.tar
	else
		# The archive did not answer: any rootfs made before will do.
		tar=$(ls -t "$cache"/debian-bookworm-slim-*.tar 2>/dev/null | head -n 1)
		[[ -n $tar ]] || tar=$cache/debian-bookworm-slim-unknown.tar
	fi
	if [[ ! -s $tar ]]; then
		local t0=$SECONDS
		note "debootstrap bookworm (cached afterwards as $tar)"
		make_rootfs "$work/rootfs" || return 1
		tar -C "$work/rootfs" --numeric-owner -cf "$tar.tmp" . &&
			mv "$tar.tmp" "$tar"
		rm -rf "$work/rootfs"
		find "$cache" -name 'debian-bookworm-slim-*.tar' ! -path "$tar" -delete
		note "debootstrap took $(elapsed "$t0")"
	fi
	podman import --quiet --change 'CMD ["bash"]' "$tar" \
		docker.io/library/debian:bookworm-slim >/dev/null
}

t0=$SECONDS
check "base image debian:bookworm-slim from Debian's archive" base_image
note "base image: $(elapsed "$t0")"

podman system service --time=0 "unix://$sock" >"$work/podman-service.log" 2>&1 &
service_pid=$!
for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.1; done
check "podman's Docker API answers" curl -fsS --unix-socket "$sock" -o /dev/null http://d/_ping

# podman schedules health checks with systemd timers; without systemd here,
# this loop plays the timer: it runs each container's own health check.
(
	while sleep 2; do
		for c in $(podman ps -q --filter "label=com.docker.compose.project=$project"); do
			podman healthcheck run "$c" >/dev/null 2>&1 || true
		done
	done
) &
ticker_pid=$!

# ---- configuration: none ------------------------------------------------
# free_port: a loopback port nobody listens on.
free_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 30000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	return 1
}
port=$(free_port) || not_ok "a free port"
url=http://127.0.0.1:$port
export GRASSHOPPER_PORT=127.0.0.1:$port TRACKER_WORKERS=3
unset TRACKER_JWT_SECRET POSTGRES_PASSWORD

# A fresh copy: the sources as committed plus the page's chart library (which
# make put in html/vendor), without git, build trees, node_modules, or the
# caller's .env and tls/.
mkdir "$src"
tar -C "$srcdir" --exclude=./.git --exclude='./build*' --exclude=./node_modules \
	--exclude=./var --exclude=./.env --exclude=./tls --exclude='./t/tmp' -cf - . |
	tar -C "$src" -xf -
[[ ! -e $src/.env ]] && ok "a fresh copy of the sources, with no .env" ||
	not_ok "a fresh copy with no .env"
grep -Eq '^[^#]*(SECRET|PASSWORD)' "$src/.env.example" &&
	not_ok ".env.example holds no secret" "$(grep -E 'SECRET|PASSWORD' "$src/.env.example")"
ok ".env.example holds no secret"
check "docker-compose config accepts the file" compose config -q
check "... and with docker-compose.tls.yml" compose_tls config -q

# ---- build and start --------------------------------------------------------
t0=$SECONDS
# One at a time: secrets, migrate and tracker build the same image, which
# the first build leaves in the cache for the others.
if compose build >"$work/build.log" 2>&1; then
	ok "docker-compose build (Dockerfile, docker/nginx, docker/postgres)"
else
	not_ok "docker-compose build" "$(tail -n 30 "$work/build.log")"
fi
t_build=$(elapsed "$t0")
note "build: $t_build"
podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' |
	grep -E 'grasshopper|debian' | sed 's/^/# image /'

# user IMAGE: the user its containers run as.
image_user() { podman image inspect --format '{{.Config.User}}' "$1"; }
[[ "$(image_user grasshopper)" == grasshopper &&
	"$(image_user grasshopper-nginx)" == www-data &&
	"$(image_user grasshopper-postgres:15)" == postgres ]] &&
	ok "no image runs as root" || not_ok "no image runs as root"
# (--no-healthcheck: one-off containers need no health check timer.)
check "the tracker's image has no compiler" \
	podman run --rm --no-healthcheck --entrypoint sh grasshopper \
	-c '! command -v cc && ! command -v make'

# healthy SERVICE...: wait until each service's container reports healthy.
healthy() {
	local s id st deadline=$((SECONDS + 180))
	for s in "$@"; do
		while :; do
			id=$(compose ps -q "$s" 2>/dev/null)
			st=
			[[ -z $id ]] ||
				st=$(podman inspect --format '{{.State.Health.Status}}' "$id" 2>/dev/null) || true
			[[ $st == healthy ]] && break
			((SECONDS < deadline)) || {
				note "$s: ${st:-no container}"
				return 1
			}
			sleep 1
		done
	done
}

t0=$SECONDS
if compose up -d >"$work/up.log" 2>&1; then
	ok "docker-compose up -d"
else
	not_ok "docker-compose up -d" "$(tail -n 20 "$work/up.log")"
fi
check "postgres, tracker and nginx report healthy" healthy postgres tracker nginx
note "up to healthy: $(elapsed "$t0")"

# ---- secrets: generated, private, never printed ------------------------------
secrets_dir=$(podman volume inspect --format '{{.Mountpoint}}' "${project}_secrets")
secret_names=(jwt-secret db-service-password db-owner-password)
# secret_perms: "NAME MODE UID GID" of each generated file, then the directory's.
secret_perms() {
	local f
	for f in "${secret_names[@]}"; do
		stat -c "$f %a %u %g %s" "$secrets_dir/$f"
	done
	stat -c "dir %a %u %g" "$secrets_dir"
}
perms=$(secret_perms 2>&1)
[[ $perms == "jwt-secret 440 0 61001 65
db-service-password 440 0 61002 65
db-owner-password 440 0 61003 65
dir 711 0 0" ]] && ok "secrets generated: 64 characters each, mode 0440, each to its readers' group" ||
	not_ok "secrets generated into the volume" "$perms"
declare -A secret
for f in "${secret_names[@]}"; do secret[$f]=$(cat "$secrets_dir/$f"); done
[[ ${secret[jwt-secret]} != "${secret[db-service-password]}" &&
	${secret[db-service-password]} != "${secret[db-owner-password]}" ]] ||
	not_ok "three different secrets"

# printed_secrets FILE: the names of the secrets FILE contains.
printed_secrets() {
	local f
	for f in "${secret_names[@]}"; do
		grep -qF -- "${secret[$f]}" "$1" && echo "$f"
	done
	true
}
compose config >"$work/config.txt" 2>&1
compose logs --no-color >"$work/logs0.txt" 2>&1
for c in $(compose ps -q); do podman inspect "$c"; done >"$work/inspect.txt" 2>&1
leaks="$(printed_secrets "$work/config.txt")$(printed_secrets "$work/logs0.txt")$(printed_secrets "$work/inspect.txt")"
grep -q 'generated jwt-secret' "$work/logs0.txt" && [[ -z $leaks ]] &&
	ok "no secret in the logs, in compose config or in the containers' configuration" ||
	not_ok "secrets never printed" "found: $leaks"

# can_read SERVICE FILE: the service's container can read the secret.
can_read() { compose exec -T "$1" sh -c "cat /secrets/$2 >/dev/null 2>&1"; }
can_read tracker jwt-secret && can_read tracker db-service-password &&
	! can_read tracker db-owner-password && can_read postgres db-owner-password &&
	! can_read postgres jwt-secret &&
	! compose exec -T nginx test -e /secrets/jwt-secret &&
	ok "each service reads only its secrets (tracker: not the owner's password; postgres: not the JWT secret; nginx: none)" ||
	not_ok "each service reads only its secrets"

# The example secret .env.example once shipped: refused, and not printed.
set +e
refused=$(podman run --rm --no-healthcheck -e GRASSHOPPER_INIT_DB=0 \
	-e TRACKER_JWT_SECRET=change-me-to-the-output-of-openssl-rand-hex-32 grasshopper serve 2>&1)
refused_status=$?
set -e
[[ $refused_status != 0 && $refused == *"example's \"change-me...\" placeholder"* &&
	$refused != *openssl-rand-hex-32* ]] &&
	ok "the tracker refuses the example secret: $refused" ||
	not_ok "the example secret is refused" "status $refused_status: $refused"

# ---- the database roles: the tracker cannot change the schema ----------------
# pg SQL: psql as the superuser in the postgres container.
pg() { compose exec -T postgres psql -X -q -A -t -v ON_ERROR_STOP=1 -d grasshopper -c "$1" 2>&1; }
users=$(pg "SELECT string_agg(DISTINCT usename, ',') FROM pg_stat_activity
	WHERE datname = 'grasshopper' AND backend_type = 'client backend' AND usename <> 'postgres'")
owner=$(pg "SELECT string_agg(DISTINCT pg_get_userbyid(relowner), ',') FROM pg_class
	WHERE relnamespace = 'public'::regnamespace")
roles=$(pg "SELECT string_agg(rolname || ':' || rolsuper::text, ',' ORDER BY rolname) FROM pg_roles
	WHERE rolname LIKE 'grasshopper%'")
[[ $users == grasshopper_service && $owner == grasshopper &&
	$roles == grasshopper:false,grasshopper_service:false ]] &&
	ok "the tracker is connected as grasshopper_service; grasshopper owns the schema; neither is a superuser" ||
	not_ok "the database roles" "connected: $users" "owner: $owner" "roles: $roles"
denied=0
for sql in 'CREATE TABLE mine (i int)' 'DROP TABLE tests' 'ALTER TABLE users ADD x int' \
	'TRUNCATE usage_chunk'; do
	out=$(pg "SET ROLE grasshopper_service; $sql") || true
	[[ $out == *"permission denied"* || $out == *"must be owner"* ]] && denied=$((denied + 1))
done
[[ $denied == 4 && $(pg 'SET ROLE grasshopper_service; SELECT count(*) >= 0 FROM users') == t ]] &&
	ok "grasshopper_service reads the tables but cannot CREATE, DROP, ALTER or TRUNCATE" ||
	not_ok "grasshopper_service's privileges" "$denied of 4 refused" "$(pg 'SET ROLE grasshopper_service; SELECT count(*) >= 0 FROM users')"

# ---- FastCGI: a unix socket only nginx shares ---------------------------------
tracker_id=$(compose ps -q tracker)
# No TCP socket listening in the tracker's network namespace (state 0A),
# so nothing on the network, another container or the host, reaches it.
tcp_listen=$(compose exec -T tracker sh -c 'cat /proc/net/tcp /proc/net/tcp6 2>/dev/null' |
	awk '$4 == "0A"' | wc -l)
published=$(podman port "$tracker_id" | wc -l)
socket_dir=$(compose exec -T tracker stat -c '%a %u %g' /run/grasshopper)
socket=$(compose exec -T tracker stat -c '%a %u %g %F' /run/grasshopper/tracker.sock)
[[ $tcp_listen == 0 && $published == 0 && $socket_dir == "2750 999 33" &&
	$socket == "660 999 33 socket" ]] &&
	ok "the tracker listens on no TCP port; its socket (0660) is in a directory only it and nginx's group enter (2750 999:33)" ||
	not_ok "FastCGI only through the socket" "TCP listeners $tcp_listen, published $published" \
		"dir $socket_dir, socket $socket"
network=$(podman inspect --format '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}' \
	"$(compose ps -q nginx)")
set +e
podman run --rm --no-healthcheck --network "$network" --entrypoint sh grasshopper -c \
	'REQUEST_METHOD=GET REQUEST_URI=/api/v1/health timeout 5 cgi-fcgi -bind -connect tracker:9000' \
	>"$work/fcgi-probe.log" 2>&1
probe=$?
set -e
((probe != 0)) && ok "another container on the network cannot speak FastCGI to the tracker" ||
	not_ok "FastCGI from another container" "$(cat "$work/fcgi-probe.log")"

# ---- containers: no capabilities, read-only roots, limits ---------------------
# hardening SERVICE: "EffectiveCaps ReadonlyRootfs no-new-privileges Memory>0 PidsLimit>0".
hardening() {
	podman inspect --format '{{.EffectiveCaps}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.SecurityOpt}} {{gt .HostConfig.Memory 0}} {{gt .HostConfig.PidsLimit 0}}' \
		"$(compose ps -q "$1")" 2>&1
}
bad=()
for svc in postgres tracker nginx; do
	h=$(hardening "$svc")
	[[ $h == "[] true [no-new-privileges] true true" ]] || bad+=("$svc: $h")
	capeff=$(compose exec -T "$svc" sh -c 'grep CapEff /proc/1/status' | awk '{print $2}')
	[[ $capeff == 0000000000000000 ]] || bad+=("$svc: PID 1 CapEff $capeff")
	compose exec -T "$svc" sh -c 'touch /probe 2>/dev/null' && bad+=("$svc: the root is writable")
done
h=$(hardening secrets)
[[ $h == "[CAP_CHOWN] true [no-new-privileges] true true" ]] || bad+=("secrets: $h")
h=$(hardening migrate)
[[ $h == "[] true [no-new-privileges] true true" ]] || bad+=("migrate: $h")
((${#bad[@]} == 0)) &&
	ok "no capability (secrets: CHOWN only), no new privileges, read-only roots, memory and pids limits" ||
	not_ok "container hardening" "${bad[@]}"

# ---- HTTP helpers -------------------------------------------------------------
# http METHOD PATH [BODY] [CURL-ARGS...]: sets $status and $body.
http() {
	local method=$1 path=$2 data=${3-}
	shift 3 || shift $#
	local out args=()
	[[ -z $data ]] || args=(-H 'Content-Type: application/json' --data-binary "$data")
	out=$(curl -sS -X "$method" -o "$work/body" -w '%{http_code}' \
		"${args[@]}" "$@" "$url$path") || out=000
	status=$out
	body=$(cat "$work/body" 2>/dev/null || true)
}
# json EXPR: evaluate a Perl expression on the decoded $body ($j).
json() {
	printf '%s' "$body" | perl -MJSON::PP -e '
		local $/; my $j = JSON::PP->new->decode(<STDIN>);
		my $v = eval $ARGV[0]; die $@ if $@;
		print ref $v ? JSON::PP->new->canonical->encode($v) : $v // "null"' "$1"
}

# ---- the page and nginx -------------------------------------------------------
headers=$(curl -sS -D - -o /dev/null -H 'Accept-Encoding: gzip' "$url/")
grep -qi '^content-security-policy: default-src' <<<"$headers" &&
	grep -qi '^x-content-type-options: nosniff' <<<"$headers" &&
	grep -qi '^referrer-policy: no-referrer' <<<"$headers" &&
	grep -qi '^content-encoding: gzip' <<<"$headers" &&
	grep -qi '^cache-control: no-cache' <<<"$headers" &&
	ok "the page: security headers, gzip, Cache-Control" ||
	not_ok "the page: security headers, gzip, Cache-Control" "$headers"

# The chart library: the nginx image fetches it with npm ci itself.
http GET /vendor/uPlot.iife.min.js
[[ $status == 200 ]] && ok "the page's chart library is served" ||
	not_ok "the page's chart library is served" "$status"

# ---- a user, a token, the containerised client --------------------------------
user=dock_$RANDOM
password=pw-$(openssl rand -hex 8)
http POST /api/v1/users "{\"username\":\"$user\",\"password\":\"$password\"}"
[[ $status == 201 ]] && ok "register through nginx: 201" ||
	not_ok "register through nginx" "$status $body"
http POST /api/v1/auth "{\"username\":\"$user\",\"password\":\"$password\"}"
[[ $status == 200 ]] && ok "log in through nginx: 200" || not_ok "log in" "$status $body"
token=$(json '$j->{token}')

# As docs/deployment.md shows it: grasshopper from the image, wrapping a
# command that keeps a core busy for 2 s and exits with status 3.
t0=$SECONDS
set +e
podman run --rm --no-healthcheck --network host -e GRASSHOPPER_JWT="$token" \
	grasshopper grasshopper --server "$url" --name docker-check --interval 0.2 -- \
	sh -c 'timeout 2 sh -c "while :; do :; done"; exit 3' \
	>"$work/client.out" 2>"$work/client.err"
client_status=$?
set -e
note "client: $(tail -n 1 "$work/client.err")"
[[ $client_status == 3 ]] && ok "grasshopper in a container exits with the command's status (3)" ||
	not_ok "grasshopper's exit status" "got $client_status" "$(cat "$work/client.err")"
note "client run: $(elapsed "$t0")"

auth=(-H "Authorization: Bearer $token")
http GET /api/v1/test '' "${auth[@]}"
[[ $status == 200 ]] || not_ok "GET /api/v1/test" "$status $body"
test_id=$(json '((grep { $_->{name} eq "docker-check" } @{ $j->{tests} })[0] // {})->{id}')
[[ $test_id =~ ^[0-9]+$ ]] && ok "the run is stored (test $test_id)" ||
	not_ok "the run is stored" "$body"
http GET "/api/v1/test/$test_id" '' "${auth[@]}"
summary=$(json '[$j->{active} ? 1 : 0, $j->{samples}, $j->{duration}, $j->{max_cpu_usage}]')
perl -MJSON::PP -e 'my ($a, $s, $d, $m) = @{ decode_json($ARGV[0]) };
	exit !($a == 0 && $s >= 5 && $d >= 1.9 && $m > 0)' "$summary" &&
	ok "the run is stopped, with samples, about 2 s long, CPU seen ($summary)" ||
	not_ok "the stored run" "$body"
http GET "/api/v1/test/$test_id/usage" '' "${auth[@]}"
samples=$(json 'scalar @{ $j->{samples} }')
[[ $status == 200 && $samples -ge 5 ]] && ok "its samples read back ($samples)" ||
	not_ok "its samples read back" "$status $body"

# Monitoring without a command, ended by `docker stop` (SIGTERM through tini).
podman run -d --no-healthcheck --name "$project-watch" --network host \
	-e GRASSHOPPER_JWT="$token" grasshopper \
	grasshopper --server "$url" --no-command --name docker-watch --interval 0.2 >/dev/null
sleep 2
podman stop --time 20 "$project-watch" >/dev/null
watch_status=$(podman inspect --format '{{.State.ExitCode}}' "$project-watch")
podman rm -f "$project-watch" >/dev/null
http GET /api/v1/test '' "${auth[@]}"
watch=$(json '((grep { $_->{name} eq "docker-watch" } @{ $j->{tests} })[0] // {})->{active} ? "active" : "stopped"')
[[ $watch == stopped && $watch_status == 0 ]] &&
	ok "grasshopper --no-command in a container: docker stop stops its test (exit 0)" ||
	not_ok "grasshopper --no-command and docker stop" "test $watch, exit $watch_status" "$body"

# Admins: psql in the postgres container, the views of schema/views.sql.
admin=$(compose exec -T postgres psql -X -A -t -d grasshopper -c \
	"SELECT samples FROM test_summary WHERE id = $test_id" 2>&1)
[[ $admin == "$samples" ]] && ok "psql in the postgres container sees it in test_summary" ||
	not_ok "psql in the postgres container" "$admin"
super=$(compose exec -T postgres psql -X -A -t -d grasshopper -c \
	"SELECT rolsuper FROM pg_roles WHERE rolname = 'grasshopper'" 2>&1)
[[ $super == f ]] && ok "the tracker's database role is not a superuser" ||
	not_ok "the tracker's role" "$super"

# No token in any log (nginx logs neither the Authorization header nor
# bodies; the tracker logs method, path, status, time).
compose logs --no-color >"$work/logs.txt" 2>&1
grep -q 'POST /api/v1/auth' "$work/logs.txt" && ! grep -qF "$token" "$work/logs.txt" &&
	ok "the logs show requests but never the token" ||
	not_ok "the logs show requests but never the token"

# ---- restart: the data lives on the named volume ------------------------------
t0=$SECONDS
compose down --timeout 40 >"$work/down1.log" 2>&1 && ok "docker-compose down (volume kept)" ||
	not_ok "docker-compose down" "$(tail "$work/down1.log")"
compose up -d >"$work/up2.log" 2>&1 || not_ok "docker-compose up -d again" "$(tail "$work/up2.log")"
check "healthy again after the restart" healthy postgres tracker nginx
note "restart: $(elapsed "$t0")"
http GET "/api/v1/test/$test_id" '' "${auth[@]}"
[[ $status == 200 && $(json '$j->{samples}') == "$(perl -MJSON::PP -e 'print decode_json($ARGV[0])->[1]' "$summary")" ]] &&
	ok "after the restart the run and its samples are still there, the old token works" ||
	not_ok "data after the restart" "$status $body"
http POST /api/v1/auth "{\"username\":\"$user\",\"password\":\"$password\"}"
[[ $status == 200 ]] && ok "the user still logs in" || not_ok "log in after restart" "$status $body"
kept=0
for f in "${secret_names[@]}"; do
	[[ $(cat "$secrets_dir/$f") == "${secret[$f]}" ]] && kept=$((kept + 1))
done
[[ $kept == 3 ]] && ok "the secrets are kept across the restart" ||
	not_ok "secrets kept across the restart" "$kept of 3"

# ---- nginx finds a recreated tracker (new container, new address) -------------
compose up -d --force-recreate --no-deps tracker >"$work/recreate.log" 2>&1 ||
	not_ok "recreate the tracker" "$(tail "$work/recreate.log")"
check "the recreated tracker is healthy" healthy tracker
http GET /api/v1/health
for _ in $(seq 30); do
	[[ $status == 200 ]] && break
	sleep 1
	http GET /api/v1/health
done
[[ $status == 200 ]] && ok "nginx reaches the recreated tracker without a restart" ||
	not_ok "nginx reaches the recreated tracker" "$status $body"

# ---- rotating the JWT secret: as docs/deployment.md says ----------------------
compose run --rm -T secrets rotate jwt-secret >"$work/rotate.log" 2>&1 &&
	compose up -d --force-recreate --no-deps tracker >>"$work/rotate.log" 2>&1 ||
	not_ok "rotate the JWT secret" "$(tail "$work/rotate.log")"
check "the tracker with the new secret is healthy" healthy tracker
http GET /api/v1/test '' "${auth[@]}"
for _ in $(seq 30); do
	[[ $status == 401 ]] && break
	sleep 1
	http GET /api/v1/test '' "${auth[@]}"
done
old_status=$status
http POST /api/v1/auth "{\"username\":\"$user\",\"password\":\"$password\"}"
token=$(json '$j->{token}')
auth=(-H "Authorization: Bearer $token")
http GET /api/v1/test '' "${auth[@]}"
[[ $old_status == 401 && $status == 200 && $(cat "$secrets_dir/jwt-secret") != "${secret[jwt-secret]}" &&
	$(stat -c '%a %g' "$secrets_dir/jwt-secret") == "440 61001" ]] &&
	ok "grasshopper-secrets rotate jwt-secret: the old token is refused, a new login works" ||
	not_ok "rotating the JWT secret" "old token: $old_status, new: $status" "$(cat "$work/rotate.log")"

# ---- TLS: docker-compose.tls.yml, a certificate curl checks ------------------
# As docs/deployment.md says: the chain and key in a directory, the key
# readable by nginx's group only.
tls_dir=$work/tls
mkdir -p "$tls_dir"
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 2 \
	-addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' \
	-keyout "$tls_dir/privkey.pem" -out "$tls_dir/fullchain.pem" 2>/dev/null
chgrp 33 "$tls_dir/privkey.pem"
chmod 640 "$tls_dir/privkey.pem"
chmod 644 "$tls_dir/fullchain.pem"
tls_port=$(free_port) || not_ok "a free port"
export GRASSHOPPER_TLS_DIR=$tls_dir GRASSHOPPER_TLS_PORT=127.0.0.1:$tls_port
compose_tls up -d --no-deps nginx >"$work/tls.log" 2>&1 || not_ok "up with docker-compose.tls.yml" "$(tail "$work/tls.log")"
tls=000
for _ in $(seq 100); do
	tls=$(curl -sS --cacert "$tls_dir/fullchain.pem" -o /dev/null -w '%{http_code} %{http_version}' \
		"https://localhost:$tls_port/api/v1/health" 2>/dev/null || true)
	[[ $tls == "200 2" ]] && break
	sleep 0.2
done
http GET /api/v1/health
[[ $tls == "200 2" && $status == 200 ]] &&
	ok "docker-compose.tls.yml: https (HTTP/2) answers /api/v1/health with a certificate curl --cacert checks; http still answers" ||
	not_ok "HTTPS with docker-compose.tls.yml" "https: $tls, http: $status" "$(compose logs --no-color --tail=10 nginx 2>&1)"
check "nginx with TLS reports healthy" healthy nginx

# ---- teardown -------------------------------------------------------------------
volume=${project}_pgdata
compose_tls down --volumes --timeout 40 >"$work/down2.log" 2>&1
! podman volume exists "$volume" && ! podman volume exists "${project}_secrets" &&
	ok "docker-compose down --volumes removes the data and the secrets" ||
	not_ok "docker-compose down --volumes" "$(tail "$work/down2.log")"

echo "1..$n"
note "build $t_build; whole check $(elapsed "$t_start") (teardown follows)"
