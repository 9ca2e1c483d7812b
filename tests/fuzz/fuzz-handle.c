/*
 * fuzz-handle.c - libFuzzer target for handle decoding
 * (server/overlay/handle.c: onfs_node_from_fh and the handle -> node
 * cache) against the real exports of fuzz-server.h: a layered read-write
 * export and a read-only one over files in a temporary directory. Also
 * linked with replay.c into an ordinary test that replays the corpus.
 *
 * A fuzzer cannot forge the MAC, so most inputs are signed by the driver
 * with the export's key before decoding: that is what a handle the server
 * issued, then saw corrupted or replayed after the tree changed, looks
 * like, and it reaches open_by_handle_at, the layer check, the merged
 * lookup and the relocation of moved lower objects.
 *
 * Input: byte 0 mode (bits 0-1), bit 2 flush the export's caches first,
 * bit 3 the read-only export; then:
 *   mode 0  the rest is a raw handle (accepted only with the right MAC)
 *   mode 1  the rest is fs index, type, then the fid; the driver adds
 *           version, export id and MAC
 *   mode 2  byte 1 picks a real handle, the rest is XORed over its fs
 *           index, type and fid (length kept), then signed
 *   mode 3  as 2, and the fid length is taken from byte 2 (truncated or
 *           extended with the following bytes), then signed
 * A handle that decodes must name a node whose own handle decodes to the
 * same node again.
 *
 * Single-threaded driver.
 */
#include "fuzz-server.h"
#include "ovlnfsd/siphash.h"
#include "../../server/overlay/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void sign(const struct onfs_export *ex, uint8_t *fh, size_t fidlen, size_t *len)
{
	size_t body = ONFS_FH_HDR + fidlen;
	uint64_t mac;

	fh[0] = ONFS_FH_VERSION;
	fh[2] = (uint8_t)(ex->id >> 8);
	fh[3] = (uint8_t)ex->id;
	fh[5] = (uint8_t)fidlen;
	mac = onfs_siphash24(ex->key, fh, body);
	for (int i = 0; i < 8; i++)
		fh[body + i] = (uint8_t)(mac >> (8 * i));
	*len = body + ONFS_FH_MAC;
}

/* Does the handle carry this export's id and the right MAC? */
static bool signed_by(const struct onfs_export *ex, const uint8_t *fh, size_t len)
{
	uint64_t mac;

	if (len < ONFS_FH_HDR + ONFS_FH_MAC || len > ONFS_FH_MAX ||
	    (fh[2] << 8 | fh[3]) != ex->id)
		return false;
	mac = onfs_siphash24(ex->key, fh, len - ONFS_FH_MAC);
	for (int i = 0; i < 8; i++)
		if (fh[len - ONFS_FH_MAC + i] != (uint8_t)(mac >> (8 * i)))
			return false;
	return true;
}

static void decode(struct onfs_export *ex, const uint8_t *fh, size_t len, bool raw)
{
	struct onfs_node *n, *again;
	const struct onfs_fh *nf;

	if (onfs_node_from_fh_cached(ex, fh, len, &n) == 0)
		onfs_node_put(n);
	if (onfs_node_from_fh(ex, fh, len, &n) < 0)
		return;
	/*
	 * A raw input may be a real handle (the fuzzer learns the MAC from
	 * the comparison), never one without this export's MAC.
	 */
	if (raw && !signed_by(ex, fh, len))
		abort();
	nf = onfs_node_fh(n);
	if (nf->len == 0 || nf->len > ONFS_FH_MAX)
		abort();
	if (onfs_node_from_fh(ex, nf->data, nf->len, &again) == 0) {
		if (onfs_node_fh(again)->len != nf->len ||
		    memcmp(onfs_node_fh(again)->data, nf->data, nf->len) != 0)
			abort(); /* the same handle named two objects */
		onfs_node_put(again);
	}
	onfs_node_put(n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct onfs_server *srv = fuzz_server();
	struct onfs_export *ex;
	uint8_t fh[ONFS_FH_MAX + 16];
	size_t len, fidlen, i;
	const struct onfs_fh *real;

	if (size < 1)
		return 0;
	ex = srv->exports[(data[0] >> 3) & 1];
	if (data[0] & 4)
		onfs_export_caches_flush(ex);
	memset(fh, 0, sizeof(fh));
	switch (data[0] & 3) {
	case 0:
		decode(ex, data + 1, size - 1, true);
		return 0;
	case 1:
		if (size < 3)
			return 0;
		fidlen = size - 3 > ONFS_FID_MAX ? ONFS_FID_MAX : size - 3;
		fh[1] = data[1];
		fh[4] = data[2];
		memcpy(fh + ONFS_FH_HDR, data + 3, fidlen);
		break;
	default:
		if (size < 3)
			return 0;
		real = &fuzz_S.fh[data[1] % fuzz_S.nfh];
		memcpy(fh, real->data, real->len);
		fidlen = fh[5] <= ONFS_FID_MAX ? fh[5] : ONFS_FID_MAX;
		if ((data[0] & 3) == 3) {
			fidlen = data[2] % (ONFS_FID_MAX + 1);
			data++;
			size--;
		}
		/* XOR over fs index, type and fid (bytes 1 and 4.. of the handle) */
		for (i = 2; i < size; i++) {
			size_t at = i == 2 ? 1 : i + 1;

			if (at >= ONFS_FH_HDR + fidlen)
				break;
			if (at == 2 || at == 3 || at == 5)
				continue;
			fh[at] ^= data[i];
		}
		memset(fh + ONFS_FH_HDR + fidlen, 0, sizeof(fh) - ONFS_FH_HDR - fidlen);
		break;
	}
	sign(ex, fh, fidlen, &len);
	decode(ex, fh, len, false);
	return 0;
}
