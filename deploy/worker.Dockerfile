# The worker fleet's image: `hlspipe worker` on ECS Fargate (deploy/template.yaml,
# FleetTaskDefinition; workers/lambda/README.md, "The worker fleet"). Built from the
# repository root:
#
#   docker build --platform linux/arm64 -f deploy/worker.Dockerfile -t hlspipe-worker .
#
# The task definition gives the command (`worker --queue-url …`) and the environment.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin hlspipe

FROM debian:bookworm-slim
# CA certificates for the AWS endpoints (rustls with the system's roots); ffmpeg (5.1) for
# the transcoding stage (HLSPIPE_LADDER, docs/ladder.md).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates ffmpeg \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/hlspipe /usr/local/bin/hlspipe
# Unprivileged; the task's root file system is read-only, with a scratch volume on /tmp.
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/hlspipe"]
CMD ["worker", "--help"]
