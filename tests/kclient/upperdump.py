#!/usr/bin/env python3
# tests/kclient/upperdump.py - print a normalised description of an overlay's
# upper layer, its index and its work directory, so that what ovlnfsd wrote
# can be diffed against what the kernel overlay wrote for the same operations
# on an identical copy of the layers.
#
# Owns: nothing but its output. Run by tests/kclient/run.sh on the host (as
# root: resolving file handles needs CAP_DAC_READ_SEARCH), after the server
# or the kernel overlay is gone. Never modifies the tree.
#
# Usage: upperdump.py --lower L1:L2... UPPER WORK
# Exit: 0 and the dump; 1 (and a message) when the dump cannot be trusted:
# the upper is missing or empty, a handle cannot be resolved, a directory
# cannot be read.
#
# Normalised, because the two runs differ there by design (docs/overlay.md):
#   - whiteouts (char 0/0) are printed as "whiteout": no mode, owner, nlink or
#     inode sharing (the kernel may link many to one inode, ovlnfsd makes
#     fresh ones);
#   - file handles (origin and upper xattrs, index names) name objects of
#     the copy the run used: each is printed as what it resolves to
#     (layer:path, or upper:path) with its header (version, flags, handle type,
#     filesystem uuid: both copies live on one filesystem) - so an origin that points at the
#     wrong object, or at nothing, differs;
#   - trusted.overlay.uuid is dropped (per-copy);
#   - names made by mktemp (kc-basic.XXXXXX) are masked;
#   - times are not compared (the two runs happen at different times);
#   - WORK/ovlnfsd (ovlnfsd's own lock, key and identity files) is left out,
#     and so is a whiteout with a temporary name (#N) in index/: the kernel's
#     shared whiteout inode, which the kernel leaves there at unmount and
#     removes at its next mount.
# Compared: path, type, mode, uid:gid, size, md5 of data, symlink target,
# rdev, nlink of non-directories, hard-link groups, every other xattr by
# value; every index entry (what its name resolves to, its kind and target);
# every entry left in WORK.
import ctypes
import hashlib
import os
import re
import stat
import sys

MASKS = [(re.compile(r"kc-(basic|posix)\.[A-Za-z0-9]{6}"), r"kc-\1.XXXXXX")]
HANDLE_XATTRS = ("origin", "upper")
OVL_FB_MAGIC = 0xFB

libc = ctypes.CDLL(None, use_errno=True)


class Dumper:
    def __init__(self, lowers, upper, work):
        self.lowers = lowers  # [(name, path)], top first
        self.upper = upper
        self.work = work
        self.errors = []
        self.by_inode = {}  # (dev, ino) -> sorted list of "layer:/path"
        for name, root in lowers + [("upper", upper)]:
            for p in walk(root):
                st = os.lstat(p)
                key = (st.st_dev, st.st_ino)
                self.by_inode.setdefault(key, []).append(
                    "%s:%s" % (name, mask(rel(p, root))))
        self.mount_fds = []
        for _, root in lowers + [("upper", upper)]:
            self.mount_fds.append(os.open(root, os.O_RDONLY | os.O_DIRECTORY))

    def error(self, msg):
        self.errors.append(msg)
        return "<%s>" % msg

    def resolve(self, fb):
        """ovl_fb bytes -> 'fh(v=..,flags=..,uuid=..) -> layer:/path'"""
        if len(fb) < 21 or fb[1] != OVL_FB_MAGIC or fb[2] != len(fb):
            return self.error("bad ovl_fb %s" % fb.hex())
        version, flags, ftype = fb[0], fb[3], fb[4]
        # both runs' layers live on one filesystem: the uuid must be equal
        uuid = fb[5:21].hex()
        fid = fb[21:]
        head = "fh(v=%d,flags=%d,type=%d,uuid=%s)" % (version, flags, ftype, uuid)
        target = None
        for mfd in self.mount_fds:
            target = open_handle(mfd, ftype, fid)
            if target is not None:
                break
        if target is None:
            return head + " -> " + self.error("handle does not resolve")
        names = self.by_inode.get(target)
        if not names:
            return head + " -> " + self.error("handle resolves outside the layers")
        return head + " -> " + ",".join(sorted(names))

    def xattrs(self, path):
        out = []
        try:
            names = os.listxattr(path, follow_symlinks=False)
        except OSError as e:
            return [self.error("listxattr %s: %s" % (path, e.strerror))]
        for n in sorted(names):
            short = None
            for pfx in ("trusted.overlay.", "user.overlay."):
                if n.startswith(pfx):
                    short = n[len(pfx):]
            if short == "uuid":
                continue
            try:
                v = os.getxattr(path, n, follow_symlinks=False)
            except OSError as e:
                out.append("%s=%s" % (n, self.error(e.strerror)))
                continue
            if short in HANDLE_XATTRS:
                v = self.resolve(v)
            else:
                v = repr(v)
            out.append("%s=%s" % (n, v))
        return out

    def describe(self, p, root):
        st = os.lstat(p)
        m = st.st_mode
        if stat.S_ISCHR(m) and st.st_rdev == 0:
            return "whiteout " + " ".join(self.xattrs(p))
        if stat.S_ISDIR(m):
            d = "dir"
        elif stat.S_ISREG(m):
            d = "reg size=%d md5=%s nlink=%d" % (st.st_size, md5(p), st.st_nlink)
        elif stat.S_ISLNK(m):
            d = "symlink ->%s nlink=%d" % (os.readlink(p), st.st_nlink)
        elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
            d = "%s rdev=%d:%d" % ("chr" if stat.S_ISCHR(m) else "blk",
                                   os.major(st.st_rdev), os.minor(st.st_rdev))
        else:
            d = "other"
        return "%s mode=%o own=%d:%d %s" % (d, stat.S_IMODE(m), st.st_uid,
                                            st.st_gid, " ".join(self.xattrs(p)))

    def dump_upper(self):
        lines = []
        groups = {}
        for p in sorted(walk(self.upper)):
            r = mask(rel(p, self.upper))
            lines.append("%s %s" % (r, self.describe(p, self.upper)))
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                groups.setdefault(st.st_ino, []).append(r)
        for paths in sorted(sorted(g) for g in groups.values()):
            if len(paths) > 1:
                lines.append("hardlinks: " + " ".join(paths))
        return lines

    def dump_index(self):
        index = os.path.join(self.work, "index")
        if not os.path.isdir(index):
            return ["index: none"]
        lines = []
        for name in sorted(os.listdir(index)):
            p = os.path.join(index, name)
            if name.startswith("#"):
                st = os.lstat(p)
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    # the kernel's shared whiteout inode: it leaves it in
                    # index/ at unmount and removes it at its next mount;
                    # ovlnfsd makes fresh whiteouts and leaves it alone
                    continue
                # any other temporary name: an unfinished operation
                lines.append("index: temp %s" % self.describe(p, index))
                continue
            try:
                fb = bytes.fromhex(name)
            except ValueError:
                lines.append("index: bad name %s" % name)
                continue
            st = os.lstat(p)
            what = self.describe(p, index)
            if stat.S_ISREG(st.st_mode):
                ups = [n for n in self.by_inode.get((st.st_dev, st.st_ino), [])
                       if n.startswith("upper:")]
                what += " links=" + ",".join(sorted(ups))
            lines.append("index: %s = %s" % (self.resolve(fb), what))
        return sorted(lines)

    def dump_work(self):
        lines = []
        for p in sorted(walk(self.work)):
            r = rel(p, self.work)
            if r == "/":
                continue
            if r == "/index" or r.startswith("/index/"):
                continue  # dump_index
            if r == "/ovlnfsd" or r.startswith("/ovlnfsd/"):
                continue  # ovlnfsd's own state (lock, key, identity map)
            lines.append("work: %s %s" % (r, self.describe(p, self.work)))
        return lines


def mask(p):
    for rx, rep in MASKS:
        p = rx.sub(rep, p)
    return p


def rel(p, root):
    return "/" + os.path.relpath(p, root) if p != root else "/"


def walk(root):
    paths = [root]

    def onerror(e):
        raise e
    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror):
        paths += [os.path.join(dirpath, n) for n in dirnames + filenames]
    return paths


def md5(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class FileHandle(ctypes.Structure):
    _fields_ = [("handle_bytes", ctypes.c_uint), ("handle_type", ctypes.c_int),
                ("f_handle", ctypes.c_ubyte * 128)]


def open_handle(mount_fd, ftype, fid):
    """(dev, ino) of the object a kernel file handle names, or None."""
    if len(fid) > 128:
        return None
    fh = FileHandle()
    fh.handle_bytes = len(fid)
    fh.handle_type = ftype
    ctypes.memmove(fh.f_handle, fid, len(fid))
    fd = libc.open_by_handle_at(mount_fd, ctypes.byref(fh), os.O_PATH)
    if fd < 0:
        return None
    try:
        st = os.fstat(fd)
        return (st.st_dev, st.st_ino)
    finally:
        os.close(fd)


def main():
    args = sys.argv[1:]
    if len(args) != 4 or args[0] != "--lower":
        sys.stderr.write("usage: upperdump.py --lower L1:L2... UPPER WORK\n")
        return 2
    lowers = [("l%d" % (i + 1), p) for i, p in enumerate(args[1].split(":"))]
    upper, work = args[2], args[3]
    for p in [upper, work] + [p for _, p in lowers]:
        if not os.path.isdir(p):
            sys.stderr.write("upperdump: %s: not a directory\n" % p)
            return 1
    try:
        d = Dumper(lowers, upper, work)
        lines = d.dump_upper() + d.dump_index() + d.dump_work()
    except OSError as e:
        sys.stderr.write("upperdump: %s\n" % e)
        return 1
    if len(lines) < 2:
        sys.stderr.write("upperdump: %s is empty: nothing to compare\n" % upper)
        return 1
    sys.stdout.write("\n".join(lines) + "\n")
    for e in d.errors:
        sys.stderr.write("upperdump: %s\n" % e)
    return 1 if d.errors else 0


if __name__ == "__main__":
    sys.exit(main())
