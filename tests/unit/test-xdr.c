/*
 * test-xdr.c - XDR round trips of the rpcgen routines built from
 * proto/nfs3.x and proto/mount3.x, through libtirpc's xdrmem: for the
 * arguments and results (OK and failure arms) of every NFS3 and MOUNT3
 * procedure, value -> encode -> decode -> encode again must give the same
 * bytes, consume exactly what was written, and every strict prefix of the
 * encoding must fail to decode. Edge cases: 64-byte handles pass and
 * 65-byte ones are refused both ways, empty opaques, 255-byte names,
 * 1024-byte mount paths (1025 refused), maximum hyper values, long entry
 * lists.
 *
 * Single-threaded test process; no files, no network. Includes rpcgen
 * headers only (never libnfs's).
 */
#include <arpa/inet.h>
#include <rpc/rpc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mount3.h"
#include "nfs3.h"
#include "unit.h"

#define BUFSZ (256 * 1024)
#define RT_FAIL ((size_t)-1) /* roundtrip_ failed */
static char enc1[BUFSZ], enc2[BUFSZ];

/*
 * Encode val, decode into a fresh object, encode that again: same bytes,
 * same length, the decoder consumed exactly the encoding, and no strict
 * prefix decodes. Returns the encoded length, or RT_FAIL.
 */
static size_t roundtrip_(xdrproc_t proc, void *val, size_t size, const char *what, int line)
{
	XDR x;
	u_int len1, len2, used;
	void *out = calloc(1, size);
	bool ok = true;

	if (!out)
		abort();
	xdrmem_create(&x, enc1, BUFSZ, XDR_ENCODE);
	if (!proc(&x, val)) {
		fprintf(stderr, "FAIL line %d: %s: encode failed\n", line, what);
		failures++;
		free(out);
		return RT_FAIL;
	}
	len1 = xdr_getpos(&x);
	xdr_destroy(&x);

	xdrmem_create(&x, enc1, len1, XDR_DECODE);
	if (!proc(&x, out)) {
		fprintf(stderr, "FAIL line %d: %s: decode of its own encoding failed\n", line,
			what);
		ok = false;
	}
	used = xdr_getpos(&x);
	xdr_destroy(&x);
	if (ok && used != len1) {
		fprintf(stderr, "FAIL line %d: %s: decode used %u of %u bytes\n", line, what,
			used, len1);
		ok = false;
	}
	if (ok) {
		xdrmem_create(&x, enc2, BUFSZ, XDR_ENCODE);
		if (!proc(&x, out)) {
			fprintf(stderr, "FAIL line %d: %s: re-encode failed\n", line, what);
			ok = false;
		}
		len2 = xdr_getpos(&x);
		xdr_destroy(&x);
		if (ok && (len2 != len1 || memcmp(enc1, enc2, len1) != 0)) {
			fprintf(stderr, "FAIL line %d: %s: round trip changed the bytes (%u vs %u)\n",
				line, what, len1, len2);
			ok = false;
		}
	}
	xdr_free(proc, out);
	free(out);

	/* Every strict prefix must be refused (stride keeps big ones cheap). */
	if (ok) {
		u_int stride = len1 > 4096 ? 61 : 1;
		for (u_int cut = 0; cut < len1; cut += stride) {
			void *p = calloc(1, size);
			bool r;

			if (!p)
				abort();
			xdrmem_create(&x, enc1, cut, XDR_DECODE);
			r = proc(&x, p);
			xdr_destroy(&x);
			xdr_free(proc, p);
			free(p);
			if (r) {
				fprintf(stderr, "FAIL line %d: %s: a %u-byte prefix of %u decoded\n",
					line, what, cut, len1);
				ok = false;
				break;
			}
		}
	}
	checks++;
	if (!ok) {
		failures++;
		return RT_FAIL;
	}
	return len1;
}

#define ROUNDTRIP(proc, val) roundtrip_((xdrproc_t)(proc), (val), sizeof(*(val)), #proc, __LINE__)

static bool encodes(xdrproc_t proc, void *val)
{
	XDR x;
	bool r;

	xdrmem_create(&x, enc1, BUFSZ, XDR_ENCODE);
	r = proc(&x, val);
	xdr_destroy(&x);
	return r;
}

/* NULL's args and results: void, in the shape xdrproc_t expects. */
static bool_t xdr_void_args(XDR *x, void *p)
{
	(void)x;
	(void)p;
	return xdr_void();
}

/* ---------- sample values ---------- */

static char fhbytes[80];
static char namebuf[1100];

static nfs_fh3 fh(u_int len)
{
	nfs_fh3 f;

	for (u_int i = 0; i < sizeof(fhbytes); i++)
		fhbytes[i] = (char)(0xa0 + i);
	f.data.data_len = len;
	f.data.data_val = fhbytes;
	return f;
}

static fattr3 attrs(void)
{
	fattr3 a;

	memset(&a, 0, sizeof(a));
	a.type = NF3REG;
	a.mode = 0100644;
	a.nlink = 3;
	a.uid = 1000;
	a.gid = 4294967295u;
	a.size = UINT64_MAX;
	a.used = 4096;
	a.rdev.specdata1 = 8;
	a.rdev.specdata2 = 1;
	a.fsid = 0x1122334455667788ull;
	a.fileid = 0x8000000000a72311ull;
	a.atime.seconds = 1;
	a.atime.nseconds = 999999999;
	a.mtime.seconds = 4294967295u;
	a.mtime.nseconds = 1;
	a.ctime.seconds = 1700000000;
	a.ctime.nseconds = 123456789;
	return a;
}

static post_op_attr poa(bool follow)
{
	post_op_attr p;

	memset(&p, 0, sizeof(p));
	p.attributes_follow = follow;
	if (follow)
		p.post_op_attr_u.attributes = attrs();
	return p;
}

static wcc_data wcc(bool before, bool after)
{
	wcc_data w;

	memset(&w, 0, sizeof(w));
	w.before.attributes_follow = before;
	if (before) {
		w.before.pre_op_attr_u.attributes.size = 12345;
		w.before.pre_op_attr_u.attributes.mtime.seconds = 7;
		w.before.pre_op_attr_u.attributes.ctime.nseconds = 8;
	}
	w.after = poa(after);
	return w;
}

static sattr3 sattr_all(void)
{
	sattr3 s;

	memset(&s, 0, sizeof(s));
	s.mode.set_it = TRUE;
	s.mode.set_mode3_u.mode = 04755;
	s.uid.set_it = TRUE;
	s.uid.set_uid3_u.uid = 1;
	s.gid.set_it = TRUE;
	s.gid.set_gid3_u.gid = 2;
	s.size.set_it = TRUE;
	s.size.set_size3_u.size = 1ull << 40;
	s.atime.set_it = SET_TO_CLIENT_TIME;
	s.atime.set_atime_u.atime.seconds = 5;
	s.mtime.set_it = SET_TO_SERVER_TIME;
	return s;
}

static post_op_fh3 pofh(bool follow)
{
	post_op_fh3 p;

	memset(&p, 0, sizeof(p));
	p.handle_follows = follow;
	if (follow)
		p.post_op_fh3_u.handle = fh(36);
	return p;
}

static diropargs3 dirop(const char *name)
{
	diropargs3 d;

	d.dir = fh(64);
	d.name = (char *)name;
	return d;
}

/* ---------- per procedure ---------- */

static void test_null(void)
{
	CHECK(ROUNDTRIP(xdr_void_args, &(char){ 0 }) == 0); /* void: nothing on the wire */
}

static void test_getattr(void)
{
	GETATTR3args a = { fh(64) };
	GETATTR3res r;

	CHECK(ROUNDTRIP(xdr_GETATTR3args, &a) == 4 + 64);
	memset(&r, 0, sizeof(r));
	r.status = NFS3_OK;
	r.GETATTR3res_u.resok.obj_attributes = attrs();
	CHECK(ROUNDTRIP(xdr_GETATTR3res, &r) == 4 + 84);
	r.status = NFS3ERR_STALE;
	CHECK(ROUNDTRIP(xdr_GETATTR3res, &r) == 4);
	/* decoded fields come back as written */
	{
		XDR x;
		GETATTR3res in, out;
		memset(&in, 0, sizeof(in));
		memset(&out, 0, sizeof(out));
		in.status = NFS3_OK;
		in.GETATTR3res_u.resok.obj_attributes = attrs();
		xdrmem_create(&x, enc1, BUFSZ, XDR_ENCODE);
		CHECK(xdr_GETATTR3res(&x, &in));
		xdr_destroy(&x);
		xdrmem_create(&x, enc1, BUFSZ, XDR_DECODE);
		CHECK(xdr_GETATTR3res(&x, &out));
		xdr_destroy(&x);
		CHECK(memcmp(&in.GETATTR3res_u.resok.obj_attributes,
			     &out.GETATTR3res_u.resok.obj_attributes, sizeof(fattr3)) == 0);
	}
}

static void test_setattr(void)
{
	SETATTR3args a;
	SETATTR3res r;

	memset(&a, 0, sizeof(a));
	a.object = fh(20);
	a.new_attributes = sattr_all();
	a.guard.check = TRUE;
	a.guard.sattrguard3_u.obj_ctime.seconds = 9;
	CHECK(ROUNDTRIP(xdr_SETATTR3args, &a) != RT_FAIL);
	memset(&a.new_attributes, 0, sizeof(a.new_attributes));
	a.guard.check = FALSE;
	CHECK(ROUNDTRIP(xdr_SETATTR3args, &a) != RT_FAIL);
	memset(&r, 0, sizeof(r));
	r.status = NFS3_OK;
	r.SETATTR3res_u.resok.obj_wcc = wcc(true, true);
	CHECK(ROUNDTRIP(xdr_SETATTR3res, &r) != RT_FAIL);
	r.status = NFS3ERR_NOT_SYNC;
	r.SETATTR3res_u.resfail.obj_wcc = wcc(false, true);
	CHECK(ROUNDTRIP(xdr_SETATTR3res, &r) != RT_FAIL);
}

static void test_lookup(void)
{
	LOOKUP3args a;
	LOOKUP3res r;

	/* a 255-byte name (NAME_MAX) */
	memset(namebuf, 'n', 255);
	namebuf[255] = 0;
	a.what = dirop(namebuf);
	CHECK(ROUNDTRIP(xdr_LOOKUP3args, &a) == 4 + 64 + 4 + 256);
	a.what = dirop("");
	CHECK(ROUNDTRIP(xdr_LOOKUP3args, &a) == 4 + 64 + 4);
	a.what = dirop("..");
	CHECK(ROUNDTRIP(xdr_LOOKUP3args, &a) != RT_FAIL);
	memset(&r, 0, sizeof(r));
	r.status = NFS3_OK;
	r.LOOKUP3res_u.resok.object = fh(64);
	r.LOOKUP3res_u.resok.obj_attributes = poa(true);
	r.LOOKUP3res_u.resok.dir_attributes = poa(false);
	CHECK(ROUNDTRIP(xdr_LOOKUP3res, &r) != RT_FAIL);
	r.status = NFS3ERR_NOENT;
	r.LOOKUP3res_u.resfail.dir_attributes = poa(true);
	CHECK(ROUNDTRIP(xdr_LOOKUP3res, &r) != RT_FAIL);
}

static void test_access(void)
{
	ACCESS3args a = { fh(8), ACCESS3_READ | ACCESS3_EXECUTE };
	ACCESS3res r;

	CHECK(ROUNDTRIP(xdr_ACCESS3args, &a) != RT_FAIL);
	memset(&r, 0, sizeof(r));
	r.status = NFS3_OK;
	r.ACCESS3res_u.resok.obj_attributes = poa(true);
	r.ACCESS3res_u.resok.access = 0x3f;
	CHECK(ROUNDTRIP(xdr_ACCESS3res, &r) != RT_FAIL);
	r.status = NFS3ERR_ACCES;
	r.ACCESS3res_u.resfail.obj_attributes = poa(false);
	CHECK(ROUNDTRIP(xdr_ACCESS3res, &r) == 8);
}

static void test_readlink(void)
{
	READLINK3args a = { fh(64) };
	READLINK3res r;

	CHECK(ROUNDTRIP(xdr_READLINK3args, &a) != RT_FAIL);
	memset(&r, 0, sizeof(r));
	r.status = NFS3_OK;
	r.READLINK3res_u.resok.symlink_attributes = poa(true);
	r.READLINK3res_u.resok.data = "../some/target";
	CHECK(ROUNDTRIP(xdr_READLINK3res, &r) != RT_FAIL);
	r.READLINK3res_u.resok.data = "";
	CHECK(ROUNDTRIP(xdr_READLINK3res, &r) != RT_FAIL);
	r.status = NFS3ERR_INVAL;
	r.READLINK3res_u.resfail.symlink_attributes = poa(true);
	CHECK(ROUNDTRIP(xdr_READLINK3res, &r) != RT_FAIL);
}

static void test_read(void)
{
	READ3args a = { fh(64), UINT64_MAX, 1u << 20 };
	READ3res r;
	static char data[3001];

	CHECK(ROUNDTRIP(xdr_READ3args, &a) == 4 + 64 + 8 + 4);
	memset(&r, 0, sizeof(r));
	r.status = NFS3_OK;
	r.READ3res_u.resok.file_attributes = poa(true);
	r.READ3res_u.resok.count = 0;
	r.READ3res_u.resok.eof = TRUE;
	r.READ3res_u.resok.data.data_len = 0; /* empty opaque */
	r.READ3res_u.resok.data.data_val = data;
	CHECK(ROUNDTRIP(xdr_READ3res, &r) != RT_FAIL);
	memset(data, 'd', sizeof(data));
	r.READ3res_u.resok.count = 3001; /* odd length: padding */
	r.READ3res_u.resok.eof = FALSE;
	r.READ3res_u.resok.data.data_len = 3001;
	CHECK(ROUNDTRIP(xdr_READ3res, &r) != RT_FAIL);
	r.status = NFS3ERR_ISDIR;
	r.READ3res_u.resfail.file_attributes = poa(false);
	CHECK(ROUNDTRIP(xdr_READ3res, &r) == 8);
}

static void test_write(void)
{
	WRITE3args a;
	WRITE3res r;
	static char data[5];

	memset(&a, 0, sizeof(a));
	a.file = fh(64);
	a.offset = 1ull << 62;
	a.count = 5;
	a.stable = FILE_SYNC;
	a.data.data_len = 5;
	a.data.data_val = data;
	CHECK(ROUNDTRIP(xdr_WRITE3args, &a) == 4 + 64 + 8 + 4 + 4 + 4 + 8);
	a.count = 0;
	a.data.data_len = 0;
	a.stable = UNSTABLE;
	CHECK(ROUNDTRIP(xdr_WRITE3args, &a) != RT_FAIL);
	memset(&r, 0, sizeof(r));
	r.status = NFS3_OK;
	r.WRITE3res_u.resok.file_wcc = wcc(true, true);
	r.WRITE3res_u.resok.count = 5;
	r.WRITE3res_u.resok.committed = DATA_SYNC;
	memcpy(r.WRITE3res_u.resok.verf, "\xff\x00\xff\x00\x12\x34\x56\x78", 8);
	CHECK(ROUNDTRIP(xdr_WRITE3res, &r) != RT_FAIL);
	r.status = NFS3ERR_NOSPC;
	r.WRITE3res_u.resfail.file_wcc = wcc(false, false);
	CHECK(ROUNDTRIP(xdr_WRITE3res, &r) == 4 + 4 + 4);
}

static void test_create(void)
{
	CREATE3args a;
	CREATE3res r;

	memset(&a, 0, sizeof(a));
	a.where = dirop("newfile");
	a.how.mode = UNCHECKED;
	a.how.createhow3_u.obj_attributes = sattr_all();
	CHECK(ROUNDTRIP(xdr_CREATE3args, &a) != RT_FAIL);
	a.how.mode = GUARDED;
	CHECK(ROUNDTRIP(xdr_CREATE3args, &a) != RT_FAIL);
	a.how.mode = EXCLUSIVE;
	memcpy(a.how.createhow3_u.verf, "verifier", 8);
	CHECK(ROUNDTRIP(xdr_CREATE3args, &a) != RT_FAIL);
	memset(&r, 0, sizeof(r));
	r.status = NFS3_OK;
	r.CREATE3res_u.resok.obj = pofh(true);
	r.CREATE3res_u.resok.obj_attributes = poa(true);
	r.CREATE3res_u.resok.dir_wcc = wcc(true, true);
	CHECK(ROUNDTRIP(xdr_CREATE3res, &r) != RT_FAIL);
	r.CREATE3res_u.resok.obj = pofh(false);
	CHECK(ROUNDTRIP(xdr_CREATE3res, &r) != RT_FAIL);
	r.status = NFS3ERR_EXIST;
	r.CREATE3res_u.resfail.dir_wcc = wcc(true, false);
	CHECK(ROUNDTRIP(xdr_CREATE3res, &r) != RT_FAIL);
}

static void test_mkdir(void)
{
	MKDIR3args a;
	MKDIR3res r;

	memset(&a, 0, sizeof(a));
	a.where = dirop("newdir");
	a.attributes = sattr_all();
	CHECK(ROUNDTRIP(xdr_MKDIR3args, &a) != RT_FAIL);
	memset(&r, 0, sizeof(r));
	r.status = NFS3_OK;
	r.MKDIR3res_u.resok.obj = pofh(true);
	r.MKDIR3res_u.resok.obj_attributes = poa(true);
	r.MKDIR3res_u.resok.dir_wcc = wcc(true, true);
	CHECK(ROUNDTRIP(xdr_MKDIR3res, &r) != RT_FAIL);
	r.status = NFS3ERR_ROFS;
	r.MKDIR3res_u.resfail.dir_wcc = wcc(false, false);
	CHECK(ROUNDTRIP(xdr_MKDIR3res, &r) != RT_FAIL);
}

static void test_symlink(void)
{
	SYMLINK3args a;
	SYMLINK3res r;

	memset(&a, 0, sizeof(a));
	a.where = dirop("ln");
	a.symlink.symlink_attributes = sattr_all();
	a.symlink.symlink_data = "/abs/target";
	CHECK(ROUNDTRIP(xdr_SYMLINK3args, &a) != RT_FAIL);
	memset(&r, 0, sizeof(r));
	r.status = NFS3_OK;
	r.SYMLINK3res_u.resok.obj = pofh(true);
	r.SYMLINK3res_u.resok.obj_attributes = poa(false);
	r.SYMLINK3res_u.resok.dir_wcc = wcc(true, true);
	CHECK(ROUNDTRIP(xdr_SYMLINK3res, &r) != RT_FAIL);
	r.status = NFS3ERR_NAMETOOLONG;
	r.SYMLINK3res_u.resfail.dir_wcc = wcc(true, true);
	CHECK(ROUNDTRIP(xdr_SYMLINK3res, &r) != RT_FAIL);
}

static void test_mknod(void)
{
	MKNOD3args a;
	MKNOD3res r;

	memset(&a, 0, sizeof(a));
	a.where = dirop("dev");
	a.what.type = NF3CHR;
	a.what.mknoddata3_u.device.dev_attributes = sattr_all();
	a.what.mknoddata3_u.device.spec.specdata1 = 1;
	a.what.mknoddata3_u.device.spec.specdata2 = 3;
	CHECK(ROUNDTRIP(xdr_MKNOD3args, &a) != RT_FAIL);
	a.what.type = NF3BLK;
	CHECK(ROUNDTRIP(xdr_MKNOD3args, &a) != RT_FAIL);
	memset(&a.what, 0, sizeof(a.what));
	a.what.type = NF3FIFO;
	a.what.mknoddata3_u.pipe_attributes = sattr_all();
	CHECK(ROUNDTRIP(xdr_MKNOD3args, &a) != RT_FAIL);
	a.what.type = NF3SOCK;
	CHECK(ROUNDTRIP(xdr_MKNOD3args, &a) != RT_FAIL);
	memset(&a.what, 0, sizeof(a.what));
	a.what.type = NF3REG; /* void arm: BADTYPE is the server's answer */
	CHECK(ROUNDTRIP(xdr_MKNOD3args, &a) != RT_FAIL);
	memset(&r, 0, sizeof(r));
	r.status = NFS3_OK;
	r.MKNOD3res_u.resok.obj = pofh(true);
	r.MKNOD3res_u.resok.obj_attributes = poa(true);
	r.MKNOD3res_u.resok.dir_wcc = wcc(true, true);
	CHECK(ROUNDTRIP(xdr_MKNOD3res, &r) != RT_FAIL);
	r.status = NFS3ERR_BADTYPE;
	r.MKNOD3res_u.resfail.dir_wcc = wcc(false, true);
	CHECK(ROUNDTRIP(xdr_MKNOD3res, &r) != RT_FAIL);
}

static void test_remove_rmdir(void)
{
	REMOVE3args a;
	REMOVE3res r;
	RMDIR3args ra;
	RMDIR3res rr;

	a.object = dirop("victim");
	CHECK(ROUNDTRIP(xdr_REMOVE3args, &a) != RT_FAIL);
	memset(&r, 0, sizeof(r));
	r.status = NFS3_OK;
	r.REMOVE3res_u.resok.dir_wcc = wcc(true, true);
	CHECK(ROUNDTRIP(xdr_REMOVE3res, &r) != RT_FAIL);
	r.status = NFS3ERR_NOENT;
	r.REMOVE3res_u.resfail.dir_wcc = wcc(false, true);
	CHECK(ROUNDTRIP(xdr_REMOVE3res, &r) != RT_FAIL);

	ra.object = dirop("dir");
	CHECK(ROUNDTRIP(xdr_RMDIR3args, &ra) != RT_FAIL);
	memset(&rr, 0, sizeof(rr));
	rr.status = NFS3_OK;
	rr.RMDIR3res_u.resok.dir_wcc = wcc(true, false);
	CHECK(ROUNDTRIP(xdr_RMDIR3res, &rr) != RT_FAIL);
	rr.status = NFS3ERR_NOTEMPTY;
	rr.RMDIR3res_u.resfail.dir_wcc = wcc(true, true);
	CHECK(ROUNDTRIP(xdr_RMDIR3res, &rr) != RT_FAIL);
}

static void test_rename_link(void)
{
	RENAME3args a;
	RENAME3res r;
	LINK3args la;
	LINK3res lr;

	a.from = dirop("a");
	a.to = dirop("b");
	a.to.dir = fh(1);
	CHECK(ROUNDTRIP(xdr_RENAME3args, &a) != RT_FAIL);
	memset(&r, 0, sizeof(r));
	r.status = NFS3_OK;
	r.RENAME3res_u.resok.fromdir_wcc = wcc(true, true);
	r.RENAME3res_u.resok.todir_wcc = wcc(false, true);
	CHECK(ROUNDTRIP(xdr_RENAME3res, &r) != RT_FAIL);
	r.status = NFS3ERR_XDEV;
	r.RENAME3res_u.resfail.fromdir_wcc = wcc(true, false);
	r.RENAME3res_u.resfail.todir_wcc = wcc(false, false);
	CHECK(ROUNDTRIP(xdr_RENAME3res, &r) != RT_FAIL);

	la.file = fh(64);
	la.link = dirop("hard");
	CHECK(ROUNDTRIP(xdr_LINK3args, &la) != RT_FAIL);
	memset(&lr, 0, sizeof(lr));
	lr.status = NFS3_OK;
	lr.LINK3res_u.resok.file_attributes = poa(true);
	lr.LINK3res_u.resok.linkdir_wcc = wcc(true, true);
	CHECK(ROUNDTRIP(xdr_LINK3res, &lr) != RT_FAIL);
	lr.status = NFS3ERR_MLINK;
	lr.LINK3res_u.resfail.file_attributes = poa(false);
	lr.LINK3res_u.resfail.linkdir_wcc = wcc(false, false);
	CHECK(ROUNDTRIP(xdr_LINK3res, &lr) != RT_FAIL);
}

static void test_readdir(void)
{
	enum { N = 1000 };
	READDIR3args a;
	READDIR3res r;
	entry3 *ents = calloc(N, sizeof(*ents));
	static char names[N][16];

	if (!ents)
		abort();
	memset(&a, 0, sizeof(a));
	a.dir = fh(64);
	a.cookie = UINT64_MAX;
	memset(a.cookieverf, 0xff, sizeof(a.cookieverf));
	a.count = 8;
	CHECK(ROUNDTRIP(xdr_READDIR3args, &a) == 4 + 64 + 8 + 8 + 4);

	memset(&r, 0, sizeof(r));
	r.status = NFS3_OK;
	r.READDIR3res_u.resok.dir_attributes = poa(true);
	memcpy(r.READDIR3res_u.resok.cookieverf, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	r.READDIR3res_u.resok.reply.entries = NULL; /* empty listing */
	r.READDIR3res_u.resok.reply.eof = TRUE;
	CHECK(ROUNDTRIP(xdr_READDIR3res, &r) != RT_FAIL);
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "name%d", i);
		ents[i].fileid = (uint64_t)i * 0x100000001ull;
		ents[i].name = names[i];
		ents[i].cookie = (uint64_t)i + 1;
		ents[i].nextentry = i + 1 < N ? &ents[i + 1] : NULL;
	}
	r.READDIR3res_u.resok.reply.entries = ents;
	r.READDIR3res_u.resok.reply.eof = FALSE;
	CHECK(ROUNDTRIP(xdr_READDIR3res, &r) != RT_FAIL);
	r.status = NFS3ERR_BAD_COOKIE;
	r.READDIR3res_u.resfail.dir_attributes = poa(false);
	CHECK(ROUNDTRIP(xdr_READDIR3res, &r) == 8);
	free(ents);
}

static void test_readdirplus(void)
{
	enum { N = 200 };
	READDIRPLUS3args a;
	READDIRPLUS3res r;
	entryplus3 *ents = calloc(N, sizeof(*ents));
	static char names[N][300];

	if (!ents)
		abort();
	memset(&a, 0, sizeof(a));
	a.dir = fh(64);
	a.cookie = 77;
	a.dircount = 512;
	a.maxcount = 1u << 20;
	CHECK(ROUNDTRIP(xdr_READDIRPLUS3args, &a) == 4 + 64 + 8 + 8 + 4 + 4);
	memset(&r, 0, sizeof(r));
	r.status = NFS3_OK;
	r.READDIRPLUS3res_u.resok.dir_attributes = poa(true);
	for (int i = 0; i < N; i++) {
		/* names of every length up to 255 */
		int len = 1 + (i * 37) % 255;
		memset(names[i], 'a' + i % 26, (size_t)len);
		names[i][len] = 0;
		ents[i].fileid = (uint64_t)i;
		ents[i].name = names[i];
		ents[i].cookie = UINT64_MAX - (uint64_t)i;
		ents[i].name_attributes = poa(i % 3 != 0);
		ents[i].name_handle = pofh(i % 5 != 0);
		ents[i].nextentry = i + 1 < N ? &ents[i + 1] : NULL;
	}
	r.READDIRPLUS3res_u.resok.reply.entries = ents;
	r.READDIRPLUS3res_u.resok.reply.eof = TRUE;
	CHECK(ROUNDTRIP(xdr_READDIRPLUS3res, &r) != RT_FAIL);
	r.status = NFS3ERR_TOOSMALL;
	r.READDIRPLUS3res_u.resfail.dir_attributes = poa(true);
	CHECK(ROUNDTRIP(xdr_READDIRPLUS3res, &r) != RT_FAIL);
	free(ents);
}

static void test_fs(void)
{
	FSSTAT3args sa = { fh(64) };
	FSSTAT3res sr;
	FSINFO3args ia = { fh(64) };
	FSINFO3res ir;
	PATHCONF3args pa = { fh(64) };
	PATHCONF3res pr;

	CHECK(ROUNDTRIP(xdr_FSSTAT3args, &sa) != RT_FAIL);
	memset(&sr, 0, sizeof(sr));
	sr.status = NFS3_OK;
	sr.FSSTAT3res_u.resok.obj_attributes = poa(true);
	sr.FSSTAT3res_u.resok.tbytes = UINT64_MAX;
	sr.FSSTAT3res_u.resok.fbytes = 1;
	sr.FSSTAT3res_u.resok.abytes = 2;
	sr.FSSTAT3res_u.resok.tfiles = 3;
	sr.FSSTAT3res_u.resok.ffiles = 4;
	sr.FSSTAT3res_u.resok.afiles = 5;
	sr.FSSTAT3res_u.resok.invarsec = 6;
	CHECK(ROUNDTRIP(xdr_FSSTAT3res, &sr) != RT_FAIL);
	sr.status = NFS3ERR_IO;
	sr.FSSTAT3res_u.resfail.obj_attributes = poa(false);
	CHECK(ROUNDTRIP(xdr_FSSTAT3res, &sr) != RT_FAIL);

	CHECK(ROUNDTRIP(xdr_FSINFO3args, &ia) != RT_FAIL);
	memset(&ir, 0, sizeof(ir));
	ir.status = NFS3_OK;
	ir.FSINFO3res_u.resok.obj_attributes = poa(true);
	ir.FSINFO3res_u.resok.rtmax = 1u << 20;
	ir.FSINFO3res_u.resok.rtpref = 1u << 19;
	ir.FSINFO3res_u.resok.rtmult = 4096;
	ir.FSINFO3res_u.resok.wtmax = 1u << 20;
	ir.FSINFO3res_u.resok.wtpref = 1u << 19;
	ir.FSINFO3res_u.resok.wtmult = 4096;
	ir.FSINFO3res_u.resok.dtpref = 65536;
	ir.FSINFO3res_u.resok.maxfilesize = UINT64_MAX;
	ir.FSINFO3res_u.resok.time_delta.nseconds = 1;
	ir.FSINFO3res_u.resok.properties = FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS |
					   FSF3_CANSETTIME;
	CHECK(ROUNDTRIP(xdr_FSINFO3res, &ir) != RT_FAIL);
	ir.status = NFS3ERR_STALE;
	ir.FSINFO3res_u.resfail.obj_attributes = poa(false);
	CHECK(ROUNDTRIP(xdr_FSINFO3res, &ir) != RT_FAIL);

	CHECK(ROUNDTRIP(xdr_PATHCONF3args, &pa) != RT_FAIL);
	memset(&pr, 0, sizeof(pr));
	pr.status = NFS3_OK;
	pr.PATHCONF3res_u.resok.obj_attributes = poa(true);
	pr.PATHCONF3res_u.resok.linkmax = 65000;
	pr.PATHCONF3res_u.resok.name_max = 255;
	pr.PATHCONF3res_u.resok.no_trunc = TRUE;
	pr.PATHCONF3res_u.resok.chown_restricted = TRUE;
	pr.PATHCONF3res_u.resok.case_insensitive = FALSE;
	pr.PATHCONF3res_u.resok.case_preserving = TRUE;
	CHECK(ROUNDTRIP(xdr_PATHCONF3res, &pr) != RT_FAIL);
	pr.status = NFS3ERR_BADHANDLE;
	pr.PATHCONF3res_u.resfail.obj_attributes = poa(false);
	CHECK(ROUNDTRIP(xdr_PATHCONF3res, &pr) != RT_FAIL);
}

static void test_commit(void)
{
	COMMIT3args a = { fh(64), 0, 0 };
	COMMIT3res r;

	CHECK(ROUNDTRIP(xdr_COMMIT3args, &a) != RT_FAIL);
	memset(&r, 0, sizeof(r));
	r.status = NFS3_OK;
	r.COMMIT3res_u.resok.file_wcc = wcc(true, true);
	memcpy(r.COMMIT3res_u.resok.verf, "commitvf", 8);
	CHECK(ROUNDTRIP(xdr_COMMIT3res, &r) != RT_FAIL);
	r.status = NFS3ERR_IO;
	r.COMMIT3res_u.resfail.file_wcc = wcc(false, false);
	CHECK(ROUNDTRIP(xdr_COMMIT3res, &r) != RT_FAIL);
}

/* ---------- file handle limits ---------- */

static void test_fh_limits(void)
{
	nfs_fh3 f = fh(64);
	GETATTR3args a;
	XDR x;
	uint32_t words[1 + 20];

	CHECK(ROUNDTRIP(xdr_nfs_fh3, &f) == 68);
	f = fh(0);
	CHECK(ROUNDTRIP(xdr_nfs_fh3, &f) == 4); /* empty opaque */
	f = fh(1);
	CHECK(ROUNDTRIP(xdr_nfs_fh3, &f) == 8); /* padded */
	f = fh(65);
	CHECK(!encodes((xdrproc_t)xdr_nfs_fh3, &f));
	a.object = fh(65);
	CHECK(!encodes((xdrproc_t)xdr_GETATTR3args, &a));
	/* a 65-byte handle on the wire is refused by the decoder */
	memset(words, 0, sizeof(words));
	words[0] = htonl(65);
	memset(&a, 0, sizeof(a));
	xdrmem_create(&x, (char *)words, sizeof(words), XDR_DECODE);
	CHECK(!xdr_GETATTR3args(&x, &a));
	xdr_destroy(&x);
	xdr_free((xdrproc_t)xdr_GETATTR3args, (char *)&a);
	/* 64 on the wire decodes */
	words[0] = htonl(64);
	memset(&a, 0, sizeof(a));
	xdrmem_create(&x, (char *)words, 4 + 64, XDR_DECODE);
	CHECK(xdr_GETATTR3args(&x, &a));
	CHECK(a.object.data.data_len == 64);
	xdr_destroy(&x);
	xdr_free((xdrproc_t)xdr_GETATTR3args, (char *)&a);
	/* a length word larger than the record */
	words[0] = htonl(0x7ffffff0);
	memset(&a, 0, sizeof(a));
	xdrmem_create(&x, (char *)words, sizeof(words), XDR_DECODE);
	CHECK(!xdr_GETATTR3args(&x, &a));
	xdr_destroy(&x);
	xdr_free((xdrproc_t)xdr_GETATTR3args, (char *)&a);
}

/* ---------- MOUNT v3 ---------- */

static void test_mount(void)
{
	dirpath p;
	mountres3 r;
	int flavors[] = { 1, 0, 390003 };
	char fhb[80]; /* room for the 65-byte refusal case */
	mountlist ml;
	mountbody mb[3];
	exports ex;
	exportnode en[2];
	groupnode gn[2];

	CHECK(ROUNDTRIP(xdr_void_args, &(char){ 0 }) == 0); /* NULL, UMNT result, UMNTALL */
	p = "/";
	CHECK(ROUNDTRIP(xdr_dirpath, &p) == 8);
	/* MNTPATHLEN: 1024 passes, 1025 is refused */
	memset(namebuf, 'p', 1024);
	namebuf[0] = '/';
	namebuf[1024] = 0;
	p = namebuf;
	CHECK(ROUNDTRIP(xdr_dirpath, &p) == 4 + 1024);
	namebuf[1024] = 'p';
	namebuf[1025] = 0;
	CHECK(!encodes((xdrproc_t)xdr_dirpath, &p));
	{
		uint32_t words[1 + 260];
		XDR x;
		char *out = NULL;

		memset(words, 'q', sizeof(words));
		words[0] = htonl(1025);
		xdrmem_create(&x, (char *)words, sizeof(words), XDR_DECODE);
		CHECK(!xdr_dirpath(&x, &out));
		xdr_destroy(&x);
		xdr_free((xdrproc_t)xdr_dirpath, (char *)&out);
	}

	memset(&r, 0, sizeof(r));
	memset(fhb, 0x5c, sizeof(fhb));
	r.fhs_status = MNT3_OK;
	r.mountres3_u.mountinfo.fhandle.fhandle3_len = 64;
	r.mountres3_u.mountinfo.fhandle.fhandle3_val = fhb;
	r.mountres3_u.mountinfo.auth_flavors.auth_flavors_len = 3;
	r.mountres3_u.mountinfo.auth_flavors.auth_flavors_val = flavors;
	CHECK(ROUNDTRIP(xdr_mountres3, &r) == 4 + 4 + 64 + 4 + 12);
	r.mountres3_u.mountinfo.auth_flavors.auth_flavors_len = 0;
	CHECK(ROUNDTRIP(xdr_mountres3, &r) != RT_FAIL);
	r.mountres3_u.mountinfo.fhandle.fhandle3_len = 65;
	CHECK(!encodes((xdrproc_t)xdr_mountres3, &r));
	r.fhs_status = MNT3ERR_NOENT;
	CHECK(ROUNDTRIP(xdr_mountres3, &r) == 4);

	/* DUMP */
	ml = NULL;
	CHECK(ROUNDTRIP(xdr_mountlist, &ml) == 4);
	for (int i = 0; i < 3; i++) {
		mb[i].ml_hostname = "127.0.0.1";
		mb[i].ml_directory = i ? "/sub" : "/";
		mb[i].ml_next = i + 1 < 3 ? &mb[i + 1] : NULL;
	}
	ml = mb;
	CHECK(ROUNDTRIP(xdr_mountlist, &ml) != RT_FAIL);

	/* EXPORT */
	ex = NULL;
	CHECK(ROUNDTRIP(xdr_exports, &ex) == 4);
	gn[0].gr_name = "127.0.0.1/32";
	gn[0].gr_next = &gn[1];
	gn[1].gr_name = "::1";
	gn[1].gr_next = NULL;
	en[0].ex_dir = "/";
	en[0].ex_groups = gn;
	en[0].ex_next = &en[1];
	en[1].ex_dir = "/exp";
	en[1].ex_groups = NULL;
	en[1].ex_next = NULL;
	ex = en;
	CHECK(ROUNDTRIP(xdr_exports, &ex) != RT_FAIL);
	/* a 255-byte group name (MNTNAMLEN) passes, 256 is refused */
	memset(namebuf, 'g', 255);
	namebuf[255] = 0;
	gn[1].gr_name = namebuf;
	CHECK(ROUNDTRIP(xdr_exports, &ex) != RT_FAIL);
	namebuf[255] = 'g';
	namebuf[256] = 0;
	CHECK(!encodes((xdrproc_t)xdr_exports, &ex));
}

int main(void)
{
	test_null();
	test_getattr();
	test_setattr();
	test_lookup();
	test_access();
	test_readlink();
	test_read();
	test_write();
	test_create();
	test_mkdir();
	test_symlink();
	test_mknod();
	test_remove_rmdir();
	test_rename_link();
	test_readdir();
	test_readdirplus();
	test_fs();
	test_commit();
	test_fh_limits();
	test_mount();
	return unit_finish("xdr");
}
