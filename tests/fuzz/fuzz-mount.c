/*
 * fuzz-mount.c - libFuzzer target for the MOUNT v3 and portmap v2
 * programs (server/mount.c, server/portmap.c) through the dispatcher of a
 * real server with two exports (fuzz-server.h): MNT of fuzzed paths
 * against the export table and its access rules, DUMP, UMNT, UMNTALL,
 * EXPORT, and portmap GETPORT/SET/UNSET/DUMP. Also linked with replay.c
 * into an ordinary test that replays the corpus.
 *
 * Input: byte 0 program (MOUNT3, PMAP2), byte 1 procedure, byte 2 the
 * credential flags of fuzz_call, the rest the argument body (FE ED 48 n
 * stands for the n-th real handle).
 *
 * Single-threaded driver; the procedures run on the libuv pool.
 */
#include "fuzz-server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct onfs_program *const mount_programs[] = {
	&onfs_mount3_program,
	&onfs_pmap2_program,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_prog_call(mount_programs, ONFS_ARRAY_SIZE(mount_programs), data, size);
	return 0;
}
