# deploy/client.Dockerfile - the demo's NFS client: Debian 12 with the libnfs
# user-space tools (nfs-ls, nfs-cat, nfs-cp) and deploy/client.sh. No kernel
# NFS client is involved, so it needs no privileges.
FROM debian:bookworm-slim
LABEL org.ovlnfsd.component=deploy-demo
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libnfs-utils \
 && rm -rf /var/lib/apt/lists/*
COPY client.sh /usr/local/bin/ovlnfsd-demo-client
ENTRYPOINT ["/usr/local/bin/ovlnfsd-demo-client"]
