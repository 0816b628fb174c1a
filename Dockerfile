# syntax=docker/dockerfile:1
# certview_exporter: a static binary on distroless (CA certificates, no shell, user nonroot).
ARG GO_VERSION=1.26.8

# The build stage runs on the builder's platform and cross-compiles for the target's, so
# `docker buildx build --platform linux/amd64,linux/arm64` needs no emulation.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG TARGETOS
ARG TARGETARCH
ARG REVISION=unknown
ARG BRANCH=unknown
# The build command is checked outside Docker by `make e2e`: it must give a static binary.
RUN mkdir -p /out/state
# The version is the VERSION file's.
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags "-s -w -X github.com/prometheus/common/version.Version=$(cat VERSION) -X github.com/prometheus/common/version.Revision=${REVISION} -X github.com/prometheus/common/version.Branch=${BRANCH} -X github.com/prometheus/common/version.BuildUser=docker" -o /out/certview_exporter .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/certview_exporter /bin/certview_exporter
COPY --from=build --chown=65532:65532 /out/state /var/lib/certview_exporter
# 65532 is distroless's nonroot user.
USER 65532:65532
EXPOSE 9856
# The snapshot directory; mount a volume here to keep it across restarts.
VOLUME ["/var/lib/certview_exporter"]
ENTRYPOINT ["/bin/certview_exporter", "--config.file=/etc/certview_exporter/config.yml"]
