# The alertkit reference server (examples/server) as a container image.
#
#   docker build -t alertkit .
#   docker run --rm -p 8000:8000 alertkit            # SQLite in /data, tokens printed
#
# Multi-stage: the build stage compiles the server in release mode; the
# runtime stage is Debian slim with the binary, running as an unprivileged
# user, with a health check on /health/ready. Every setting comes from the
# environment: `docker run --rm alertkit --help` lists them.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --example server \
 && cp target/release/examples/server /alertkit-server

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --create-home alertkit \
 && mkdir -p /data/reports && chown -R alertkit:alertkit /data
COPY --from=build /alertkit-server /usr/local/bin/alertkit-server
USER alertkit
WORKDIR /data
ENV ALERTKIT_ADDR=0.0.0.0:8000 \
    DATABASE_URL=sqlite:///data/alertkit.db?mode=rwc \
    ALERTKIT_REPORT_DIR=/data/reports
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8000/health/ready || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/alertkit-server"]
