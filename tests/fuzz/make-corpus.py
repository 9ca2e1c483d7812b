#!/usr/bin/env python3
# make-corpus.py - writes the seed corpus of the fuzz targets (a few valid
# records and arguments) into corpus/recmark and corpus/call. Run from
# tests/fuzz after a protocol change; the output is checked in.
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def u32(*vals):
    return b"".join(struct.pack(">I", v & 0xffffffff) for v in vals)


def opaque(b):
    return u32(len(b)) + b + b"\0" * ((4 - len(b) % 4) % 4)


def auth_sys(uid=1000, gid=1000, groups=(1000, 27)):
    body = u32(0x1234) + opaque(b"fuzzhost") + u32(uid, gid, len(groups), *groups)
    return u32(1) + opaque(body) + u32(0, 0)


def auth_none():
    return u32(0, 0, 0, 0)


def call(xid, prog, vers, proc, cred, args=b""):
    return u32(xid, 0, 2, prog, vers, proc) + cred + args


def mark(rec, last=True):
    return u32(len(rec) | (0x80000000 if last else 0)) + rec


FH = opaque(bytes(range(1, 33)))


def write(sub, name, data):
    d = os.path.join(HERE, "corpus", sub)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


getport = call(1, 100000, 2, 3, auth_none(), u32(100003, 3, 6, 0))
getattr3 = call(2, 100003, 3, 1, auth_sys(), FH)
mnt = call(3, 100005, 3, 1, auth_sys(), opaque(b"/"))

# call: 0 = header, 1 = dispatch, 2.. = argument decoders
write("call", "hdr-auth-sys", b"\0" + getattr3)
write("call", "hdr-auth-none", b"\0" + call(4, 100005, 3, 0, auth_none()))
write("call", "hdr-rpcvers3", b"\0" + u32(5, 0, 3, 100003, 3, 0) + auth_none())
write("call", "dispatch-pmap-getport", b"\1" + getport)
write("call", "dispatch-pmap-dump", b"\1" + call(6, 100000, 2, 4, auth_none()))
write("call", "dispatch-nfs-null", b"\1" + call(7, 100003, 3, 0, auth_none()))
write("call", "dispatch-nfs-getattr", b"\1" + getattr3)
write("call", "dispatch-nfs-v4", b"\1" + call(8, 100003, 4, 0, auth_none()))
write("call", "dispatch-nfs-read", b"\1" + call(9, 100003, 3, 6, auth_sys(),
                                                 FH + u32(0, 0, 4096)))
write("call", "dispatch-nfs-readdirplus", b"\1" + call(10, 100003, 3, 17, auth_sys(),
                                                        FH + u32(0, 0, 0, 0, 512, 4096)))
write("call", "dispatch-mount-mnt", b"\1" + mnt)
write("call", "dispatch-mount-export", b"\1" + call(11, 100005, 3, 5, auth_none()))
# generic argument shapes, one per decoder slot (the target takes the
# selector modulo the number of decoders)
shapes = [
    FH,
    FH + opaque(b"name"),
    FH + u32(0, 0, 8192),
    FH + u32(0, 0, 0, 0, 1024),
    FH + u32(0, 0, 0, 0, 512, 4096),
    FH + u32(0x1f),
    opaque(b"/export/dir"),
    u32(100003, 3, 6, 0),
]
for k in range(48):
    write("call", "args-%02d" % k, bytes([2 + k]) + shapes[k % len(shapes)])

# recmark: cap/4, chunk pattern, stream
two = mark(getport) + mark(getattr3)
frag = mark(getattr3[:10], last=False) + mark(b"", last=False) + mark(getattr3[10:])
write("recmark", "two-records", b"\xff\x05" + two)
write("recmark", "multi-fragment", b"\xff\x0b" + frag)
write("recmark", "empty-record", b"\x10\x00" + mark(b"") + mark(getport))
write("recmark", "over-cap", b"\x04\x03" + mark(getattr3))
write("recmark", "partial-tail", b"\xff\x07" + mark(getport) + mark(getattr3)[:9])


# --- the targets that drive a real server (fuzz-server.h) ---
# FE ED 48 n stands for the n-th real handle: 0 root of /rw, 1 a.txt,
# 2 dir, 3 dir/b.txt, 4 sym, 5 u.txt, 6 dir/sub, 7 big, 8 root of /ro,
# 9 /ro/a.txt
def fh(n):
    return b"\xfe\xed\x48" + bytes([n])


SATTR0 = u32(0, 0, 0, 0, 0, 0)  # sattr3: nothing set
SATTR_MODE = u32(1, 0o644, 0, 0, 0, 0, 0)  # mode 0644
VERF = b"\x01" * 8


def string(s):
    return opaque(s.encode() if isinstance(s, str) else s)


def u64(v):
    return u32(v >> 32, v)


NFS3 = {
    "null": (0, b""),
    "getattr": (1, fh(1)),
    "setattr": (2, fh(5) + u32(1, 0o600, 0, 0, 1, 0, 3) + u64(10) + u32(0, 0, 0)),
    "lookup": (3, fh(0) + string("a.txt")),
    "lookup-dotdot": (3, fh(2) + string("..")),
    "access": (4, fh(1) + u32(0x3f)),
    "readlink": (5, fh(4)),
    "read": (6, fh(7) + u64(3) + u32(40)),
    "write": (7, fh(1) + u64(2) + u32(4, 2) + opaque(b"abcd")),
    "create": (8, fh(0) + string("new") + u32(0) + SATTR_MODE),
    "create-excl": (8, fh(2) + string("ex") + u32(2) + VERF),
    "mkdir": (9, fh(0) + string("nd") + SATTR_MODE),
    "symlink": (10, fh(2) + string("ln") + SATTR0 + string("b.txt")),
    "mknod-fifo": (11, fh(0) + string("fifo") + u32(7) + SATTR_MODE),
    "remove": (12, fh(2) + string("b.txt")),
    "rmdir": (13, fh(2) + string("sub")),
    "rename": (14, fh(0) + string("a.txt") + fh(2) + string("moved")),
    "link": (15, fh(7) + fh(2) + string("hard")),
    "readdir": (16, fh(0) + u64(0) + b"\0" * 8 + u32(4096)),
    "readdirplus": (17, fh(2) + u64(0) + b"\0" * 8 + u32(512, 8192)),
    "fsstat": (18, fh(0)),
    "fsinfo": (19, fh(8)),
    "pathconf": (20, fh(9)),
    "commit": (21, fh(1) + u64(0) + u32(0)),
}
for name, (proc, args) in NFS3.items():
    write("call", "nfs3-" + name, b"\xff" + bytes([0, proc, 2]) + args)
write("call", "nfs3-getattr-ro-root", b"\xff" + bytes([0, 1, 0]) + fh(8))
write("call", "nfs3-write-ro", b"\xff" + bytes([0, 7, 2]) + fh(9) + u64(0) + u32(1, 0) + opaque(b"x"))

MOUNT = {
    "null": (0, b""),
    "mnt-rw": (1, string("/rw")),
    "mnt-ro": (1, string("/ro")),
    "mnt-none": (1, string("/nothing/here")),
    "dump": (2, b""),
    "umnt": (3, string("/rw")),
    "umntall": (4, b""),
    "export": (5, b""),
}
PMAP = {
    "null": (0, b""),
    "set": (1, u32(100099, 1, 6, 4000)),
    "unset": (2, u32(100003, 3, 6, 0)),
    "getport": (3, u32(100003, 3, 6, 0)),
    "getport-nlm": (3, u32(100021, 4, 17, 0)),
    "dump": (4, b""),
    "callit": (5, u32(100003, 3, 0) + opaque(b"")),
}
for name, (proc, args) in MOUNT.items():
    write("mount", "mount-" + name, bytes([0, proc, 2]) + args)
    write("call", "mount-" + name, b"\xff" + bytes([1, proc, 2]) + args)
write("mount", "mount-mnt-insecure-port", bytes([0, 1, 6]) + string("/ro"))
write("mount", "mount-mnt-v6", bytes([0, 1, 10]) + string("/rw"))
for name, (proc, args) in PMAP.items():
    write("mount", "pmap-" + name, bytes([1, proc, 1]) + args)
    write("call", "pmap-" + name, b"\xff" + bytes([2, proc, 1]) + args)


def lock4(n=1, svid=7, off=0, ln=10, host="fuzzclient", oh=b"owner1"):
    return string(host) + fh(n) + opaque(oh) + u32(svid) + u64(off) + u64(ln)


def lock1(n=1, svid=7, off=0, ln=10, host="fuzzclient", oh=b"owner1"):
    return string(host) + fh(n) + opaque(oh) + u32(svid, off, ln)


COOKIE = opaque(b"ck01")


def nlm_set(lock):
    share = string("fuzzclient") + fh(1) + opaque(b"owner1") + u32(1, 3)
    return {
        "null": (0, b""),
        "test": (1, COOKIE + u32(1) + lock()),
        "lock": (2, COOKIE + u32(0, 1) + lock() + u32(0, 3)),
        "lock-block": (2, COOKIE + u32(1, 1) + lock(svid=8, oh=b"owner2") + u32(0, 3)),
        "lock-reclaim": (2, COOKIE + u32(0, 0) + lock(n=3) + u32(1, 3)),
        "cancel": (3, COOKIE + u32(1, 1) + lock(svid=8, oh=b"owner2")),
        "unlock": (4, COOKIE + lock()),
        "granted": (5, COOKIE + u32(1) + lock()),
        "test-msg": (6, COOKIE + u32(1) + lock()),
        "lock-msg": (7, COOKIE + u32(0, 1) + lock(n=5) + u32(0, 3)),
        "cancel-msg": (8, COOKIE + u32(0, 1) + lock(n=5)),
        "unlock-msg": (9, COOKIE + lock(n=5)),
        "granted-msg": (10, COOKIE + u32(1) + lock()),
        "test-res": (11, COOKIE + u32(0)),
        "lock-res": (12, COOKIE + u32(0)),
        "granted-res": (15, COOKIE + u32(0)),
        "share": (20, COOKIE + share + u32(0)),
        "unshare": (21, COOKIE + share + u32(0)),
        "nm-lock": (22, COOKIE + u32(0, 1) + lock(n=7) + u32(0, 0)),
        "free-all": (23, string("fuzzclient") + u32(5)),
    }


NSM = {
    "null": (0, b""),
    "stat": (1, string("fuzzclient")),
    "mon": (2, string("fuzzclient") + string("127.0.0.1") + u32(100021, 4, 16) + b"\0" * 16),
    "unmon": (3, string("fuzzclient") + string("127.0.0.1") + u32(100021, 4, 16)),
    "unmon-all": (4, string("127.0.0.1") + u32(100021, 4, 16)),
    "simu-crash": (5, b""),
    "notify": (6, string("fuzzclient") + u32(3)),
}
for idx, (tag, lock) in enumerate([("nlm4", lock4), ("nlm3", lock1), ("nlm1", lock1)]):
    for name, (proc, args) in nlm_set(lock).items():
        write("nlm", "%s-%s" % (tag, name), bytes([idx, proc, 2]) + args)
        write("call", "%s-%s" % (tag, name), b"\xff" + bytes([3 + idx, proc, 2]) + args)
for name, (proc, args) in NSM.items():
    write("nlm", "nsm-" + name, bytes([3, proc, 2]) + args)
    write("call", "nsm-" + name, b"\xff" + bytes([6, proc, 2]) + args)
write("call", "unknown-program", b"\xff" + bytes([7, 0, 0]))

# handle: mode byte (bits 0-1 mode, bit 2 flush caches, bit 3 the ro export)
for n in range(10):
    write("handle", "real-%d" % n, bytes([2, n, 0, 0]))
    write("handle", "real-flushed-%d" % n, bytes([6, n, 0, 0]))
write("handle", "ro-root", bytes([10, 8, 0]))
write("handle", "fid-bit-flip", bytes([6, 1, 0, 0, 0, 1]))
write("handle", "other-fs-index", bytes([6, 3, 1, 0]))
write("handle", "fid-truncated", bytes([7, 1, 4]))
write("handle", "fid-extended", bytes([7, 1, 40, 0, 0, 0, 0, 9, 9, 9, 9]))
write("handle", "signed-garbage", bytes([5, 0, 1]) + b"\x08\0\0\0\x01\0\0\0")
write("handle", "raw-unsigned", b"\0" + b"\x01\x00\x00\x01\x01\x08" + b"\0" * 16)

# config: byte 0 = 0 INI file, 1 overlay options, 2 host:port, 3 argv
CONFIGS = {
    "full": """[server]
listen = 127.0.0.1:2049
portmap = 127.0.0.1:111
threads = 4
log = info
state_dir = /var/lib/ovlnfsd
max_record = 1M
max_connections = 100
io_timeout = 30
grace = 90
metrics = 127.0.0.1:9100

[export base]
path = /base
lowerdir = /srv/a:/srv/b\\:c
clients = 10.0.0.0/24, 2001:db8:1::/48
squash = root
secure = yes

[export build]
path = /build
lowerdir = /srv/b
upperdir = /srv/build/upper
workdir = /srv/build/work
clients = 10.0.0.17 10.0.0.18
access = rw
squash = none
anonuid = 1000
anongid = 1000
locking = local
owner = 0
""",
    "template-name": """[export clients]
path          = /clients/{name}
lowerdir      = /srv/base
upperdir      = /srv/clients/{name}/upper
workdir       = /srv/clients/{name}/work
max_instances = 200
""",
    "template-client": """[export agents]
path = /agents
lowerdir = /srv/base
upperdir = /srv/agents/{client}/upper
workdir = /srv/agents/{client}/work
idle_timeout = 900
locking = off
""",
    "template-host": """[export h]
path = /h
lowerdir = /l
upperdir = /u/{host}
workdir = /w/{host}
[export h2]
path = /h2
lowerdir = /l
upperdir = /u/{host}/x
workdir = /w2/{host}
""",
    "errors": """[server]
listen = nowhere
[export a]
path = relative
lowerdir = /l::/m
bogus = 1
this line is junk
[export a]
""",
}
for name, text in CONFIGS.items():
    write("config", "ini-" + name, b"\0" + text.encode())
write("config", "overlay-opts", b"\1lowerdir=/a\\:b:/c,upperdir=/u,workdir=/w")
write("config", "overlay-opts-bad", b"\1lowerdir=,upperdir=/u,bogus")
write("config", "hostport-v6", b"\2[::1]:2049")
write("config", "hostport-v4", b"\x02127.0.0.1:0")
write("config", "argv", b"\3-o\0lowerdir=/l,upperdir=/u,workdir=/w\0--listen\0"
      b"127.0.0.1:0\0--export\0/x\0--threads\0009\0--grace\0005\0-v\0-f")
