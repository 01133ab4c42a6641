# grasshopper: the tracker service and the grasshopper client in one image.
#
#   docker build -t grasshopper .
#   docker run --rm grasshopper grasshopper --help            # the client
#   docker compose up -d                                       # the service
#
# The first stage builds with the project's own autotools; the second keeps
# only the installed files and the runtime libraries. nginx and PostgreSQL
# have their own images (docker/nginx, docker/postgres); docker-compose.yml
# puts the three together. See docs/deployment.md.

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	build-essential autoconf automake pkg-config \
	libcurl4-openssl-dev libfcgi-dev libpq-dev libjson-c-dev libjwt-dev \
	libsodium-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN ./autogen.sh \
 && ./configure --prefix=/usr --sysconfdir=/etc --localstatedir=/var \
 && make -j"$(nproc)" \
 && make install DESTDIR=/out

FROM debian:bookworm-slim
# Runtime libraries only; libfcgi-bin brings cgi-fcgi for the health check,
# tini reaps and forwards signals so the pool's master is never PID 1.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	ca-certificates libcurl4 libfcgi0ldbl libfcgi-bin libpq5 libjson-c5 \
	libjwt0 libsodium23 tini \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /
COPY docker/tracker/entrypoint /usr/local/bin/grasshopper-entrypoint
COPY docker/tracker/healthcheck /usr/local/bin/grasshopper-healthcheck
COPY docker/tracker/secrets /usr/local/bin/grasshopper-secrets
# Fail the build, not the first start, if a library is missing.
RUN ! ldd /usr/bin/grasshopper /usr/bin/grasshopper-tracker | grep 'not found' \
 && grasshopper-tracker version && grasshopper --version \
 && useradd --system --uid 999 --user-group --home-dir /nonexistent \
	--shell /usr/sbin/nologin grasshopper \
 && install -d -m 2750 -o grasshopper -g www-data /run/grasshopper

USER grasshopper
# The pool listens on a unix socket, never on TCP: only whoever shares the
# directory, and is in its group (www-data: nginx's container), can reach
# it. docker-compose.yml shares it through a volume with nginx alone.
ENV TRACKER_LISTEN=/run/grasshopper/tracker.sock
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
	CMD ["grasshopper-healthcheck"]
ENTRYPOINT ["/usr/bin/tini", "--", "grasshopper-entrypoint"]
CMD ["serve"]
