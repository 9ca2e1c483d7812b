#!/bin/sh
# deploy/entrypoint.sh - the container's entry point: creates upper/, work/,
# clients/ (the parent of per-client templates) and state/ inside the
# /srv/upper volume (a fresh volume is empty), then
# replaces itself with ovlnfsd, which becomes the container's main process
# (PID 1: it handles SIGTERM itself and exits 0 after draining).
#
# Arguments starting with "-" are ovlnfsd options (the image's CMD); any
# other command runs as given (e.g. `docker run ... IMAGE sh`).
# ONFS_MKDIRS lists the directories to create (set it empty for none).
set -eu
: "${ONFS_MKDIRS=/srv/upper/upper /srv/upper/work /srv/upper/clients /srv/upper/state}"
for d in $ONFS_MKDIRS; do
	mkdir -p "$d"
done
if [ $# -eq 0 ] || [ "${1#-}" != "$1" ]; then
	set -- /usr/bin/ovlnfsd "$@"
fi
exec "$@"
