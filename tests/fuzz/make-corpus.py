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
