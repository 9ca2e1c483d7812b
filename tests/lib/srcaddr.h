/*
 * srcaddr.h - libnfs clients with a chosen loopback source address and
 * AUTH_SYS machine name, for the per-client instance tests: several
 * "machines" (127.0.0.2, 127.0.0.3, ...) from one test process.
 *
 * libnfs cannot bind its socket to an address, so srcaddr.c defines
 * connect() and bind() in the test executable itself: the dynamic linker
 * resolves libnfs's calls to them (as an LD_PRELOAD shim would), and they
 * bind the socket to the address set here before passing the call on to
 * the C library. Only executables that link onfs_testlib_src get this.
 * Test process only (single-threaded).
 */
#ifndef OVLNFSD_TEST_SRCADDR_H
#define OVLNFSD_TEST_SRCADDR_H

#include "nfsclient.h"

/* Bind IPv4 sockets connected from now on to addr (NULL: as the kernel picks). */
void tl_src_addr_set(const char *addr);

/*
 * Connect from src (e.g. "127.0.0.2"; NULL: default) and send AUTH_SYS
 * with this machine name (NULL: libnfs's default) and uid/gid 0.
 */
void tl_client_connect_as(struct tl_client *c, int port, const char *src, const char *machine);

/* The local address of the client's connection, to check the shim worked. */
void tl_client_local_addr(struct tl_client *c, char *out, size_t cap);

#endif
