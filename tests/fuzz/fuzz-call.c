/*
 * fuzz-call.c - libFuzzer target for the call path: the RPC call header
 * and credential decoder (server/rpc.c), every argument decoder of the
 * NFS3, MOUNT3, PMAP2, NLM 1/3/4 and NSM 1 procedure tables (rpcgen code
 * over xdrmem), and every procedure of every program through the
 * dispatcher of a real server (fuzz-server.h: two exports over a small
 * overlay in a temporary directory, the lock manager running). Also linked
 * with replay.c into an ordinary test that replays the corpus.
 *
 * Input: byte 0 selects what the rest is fed to:
 *   0      the call-header decoder
 *   1      onfs_dispatch_record: a whole record as the transport hands it
 *          over (replies are built, then dropped), run to completion
 *   255    a call the driver frames: byte 1 program (NFS3, MOUNT3, PMAP2,
 *          NLM 4/3/1, NSM 1, one unknown), byte 2 procedure, byte 3
 *          credential flags, the rest the arguments, where FE ED 48 n
 *          stands for the n-th real handle (fuzz-server.h)
 *   2..254 argument decoder number (byte0 - 2) modulo the number of
 *          decoders: decode, re-encode (never longer), xdr_free
 *
 * libtirpc's xdr_string/xdr_bytes allocate the length the wire claims (up
 * to 4 GiB for an unbounded string<>/opaque<>) before checking that the
 * bytes are there; the decode then fails and frees it. In the server that
 * is a short-lived virtual allocation; under ASan it is slow, so ASan is
 * told below to fail such allocations at once (the decoder then answers
 * FALSE, which is what the server does when calloc fails).
 *
 * Single-threaded driver (the dispatcher may use the libuv pool).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <rpc/rpc.h>
#include <uv.h>

#include "ovlnfsd/common.h"
#include "ovlnfsd/nlm.h"
#include "ovlnfsd/rpc.h"
#include "ovlnfsd/server.h"
#include "fuzz-server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__asan_default_options(void);

/* Used only when linked with ASan (see the file comment). */
const char *__asan_default_options(void)
{
	return "allocator_may_return_null=1:max_allocation_size_mb=256";
}

static const struct onfs_program *const fuzz_programs[] = {
	&onfs_nfs3_program,
	&onfs_mount3_program,
	&onfs_pmap2_program,
	&onfs_nlm4_program,
	&onfs_nlm3_program,
	&onfs_nsm1_program,
	&onfs_nlm1_program,
};

/* A program nobody serves: PROG_UNAVAIL */
static const struct onfs_program fuzz_unknown = { "unknown", 100099, 1, NULL, 0 };

/* What the framed calls (byte 0 == 255) go to. */
static const struct onfs_program *const call_programs[] = {
	&onfs_nfs3_program, &onfs_mount3_program, &onfs_pmap2_program, &onfs_nlm4_program,
	&onfs_nlm3_program, &onfs_nlm1_program,   &onfs_nsm1_program,  &fuzz_unknown,
};

/* The n-th procedure (over all tables) that has an argument decoder. */
static const struct onfs_proc *nth_decoder(size_t n)
{
	size_t total = 0, i, k;

	for (i = 0; i < ONFS_ARRAY_SIZE(fuzz_programs); i++)
		for (k = 0; k < fuzz_programs[i]->nprocs; k++)
			if (fuzz_programs[i]->procs[k].xdr_args)
				total++;
	if (total == 0)
		return NULL;
	n %= total;
	for (i = 0; i < ONFS_ARRAY_SIZE(fuzz_programs); i++)
		for (k = 0; k < fuzz_programs[i]->nprocs; k++)
			if (fuzz_programs[i]->procs[k].xdr_args && n-- == 0)
				return &fuzz_programs[i]->procs[k];
	return NULL;
}

static void fuzz_header(const uint8_t *p, size_t len)
{
	struct onfs_rpc_hdr h;
	uint32_t st;
	enum onfs_rpc_verdict v = onfs_rpc_decode_call(p, len, &h, &st);

	if (v == ONFS_RPC_OK) {
		if (h.args_off > len || (h.args_off & 3) || h.cred.ngroups > ONFS_MAX_GROUPS)
			abort();
		if (h.cred.flavor != ONFS_AUTH_NONE && h.cred.flavor != ONFS_AUTH_SYS)
			abort();
	} else if (v == ONFS_RPC_AUTH_ERROR && st == AUTH_OK) {
		abort();
	}
}

static void fuzz_args(const struct onfs_proc *p, const uint8_t *data, size_t len)
{
	void *args = calloc(1, p->args_size ? p->args_size : 1);
	char *copy = malloc(len ? len : 1);
	char *enc = NULL;
	XDR x;
	u_int used;
	bool_t ok;

	if (!args || !copy)
		goto out;
	/* a private copy: ASan sees any read past the input */
	memcpy(copy, data, len);
	xdrmem_create(&x, copy, (u_int)len, XDR_DECODE);
	ok = p->xdr_args(&x, args);
	used = xdr_getpos(&x);
	xdr_destroy(&x);
	if (ok) {
		if (used > len)
			abort();
		/*
		 * What decoded must encode again, never longer (shorter is
		 * possible: xdr_string keeps a C string, so a name with an
		 * embedded NUL comes back cut at the NUL).
		 */
		enc = malloc(used + 16);
		if (!enc)
			goto out_free;
		xdrmem_create(&x, enc, used + 16, XDR_ENCODE);
		if (!p->xdr_args(&x, args) || xdr_getpos(&x) > used)
			abort();
		xdr_destroy(&x);
	}
out_free:
	xdr_free(p->xdr_args, args);
out:
	free(enc);
	free(copy);
	free(args);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct onfs_proc *p;

	if (size < 1)
		return 0;
	switch (data[0]) {
	case 0:
		fuzz_header(data + 1, size - 1);
		break;
	case 1:
		fuzz_record(data + 1, size - 1);
		break;
	case 255:
		fuzz_prog_call(call_programs, ONFS_ARRAY_SIZE(call_programs), data + 1, size - 1);
		break;
	default:
		p = nth_decoder((size_t)data[0] - 2);
		if (p)
			fuzz_args(p, data + 1, size - 1);
		break;
	}
	return 0;
}
