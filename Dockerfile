# The operator image. No base image and no registry: the binary is static and built on
# the host by `make docker-build` (CGO_ENABLED=0), then copied into an empty image.
FROM scratch
COPY bin/swarm-operator /swarm-operator
# Non-root, as the restricted Pod Security Standard asks.
USER 65532:65532
ENTRYPOINT ["/swarm-operator"]
