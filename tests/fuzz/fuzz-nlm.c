/*
 * fuzz-nlm.c - libFuzzer target for the lock manager: NLM v1, v3 and v4
 * (server/nlm.c) and NSM v1 (server/nsm.c) through the dispatcher of a
 * real server (fuzz-server.h) whose exports have lock tables (one
 * `locking = on` with holder records in the state directory, one
 * `locking = local`). The lock table keeps its state from one input to
 * the next, as a server's does: locks taken by one input conflict with,
 * block, or are released by later ones; _MSG calls and GRANTED callbacks
 * go out through the lock manager's UDP sockets to 127.0.0.1. Also linked
 * with replay.c into an ordinary test that replays the corpus.
 *
 * Input: byte 0 program (NLM 4, 3, 1, NSM 1), byte 1 procedure, byte 2
 * the credential flags of fuzz_call, the rest the argument body (FE ED 48
 * n stands for the n-th real handle: an NLM lock's fh).
 *
 * Single-threaded driver; the procedures run on the libuv pool.
 */
#include "fuzz-server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct onfs_program *const nlm_programs[] = {
	&onfs_nlm4_program,
	&onfs_nlm3_program,
	&onfs_nlm1_program,
	&onfs_nsm1_program,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_prog_call(nlm_programs, ONFS_ARRAY_SIZE(nlm_programs), data, size);
	return 0;
}
