/*
 * siphash.h - SipHash-2-4 (Aumasson & Bernstein), 64-bit output, 16-byte
 * key. Used for handle MACs and readdir cookies. Pure; any thread.
 */
#ifndef OVLNFSD_SIPHASH_H
#define OVLNFSD_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t onfs_siphash24(const uint8_t key[16], const void *data, size_t len);

#endif
