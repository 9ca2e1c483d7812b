#!/usr/bin/env python3
# tests/kclient/upperdump.py - print a normalised description of an overlay
# upper layer (and a summary of workdir/index) so that the upper written by
# ovlnfsd can be diffed against the one the kernel overlay wrote for the same
# operations.
#
# Owns: nothing but its output. Run by tests/kclient/run.sh on the host, after
# the server (or the kernel overlay) is gone. Never modifies the tree.
#
# Normalised, because they differ by design (OVERLAY.md §9, docs/decisions.md):
#   - whiteouts (char 0/0) are printed as "whiteout": no mode, owner, nlink or
#     inode sharing (the kernel links many to one inode, ovlnfsd makes fresh ones);
#   - trusted.overlay.uuid is dropped; origin/upper hold file handles of the
#     copy the tree was built on, so only their presence and header is shown;
#   - names made by mktemp (kc-basic.XXXXXX) are masked;
#   - times are not compared (the two runs happen at different times).
# Compared: path, type, mode, uid:gid, size, md5 of data, symlink target,
# rdev, nlink of non-directories, hard-link groups, every other xattr by value.
import hashlib
import os
import re
import stat
import sys

HANDLE_XATTRS = ("origin", "upper")
MASKS = [(re.compile(r"kc-(basic|posix)\.[A-Za-z0-9]{6}"), r"kc-\1.XXXXXX")]


def mask(p):
    for rx, rep in MASKS:
        p = rx.sub(rep, p)
    return p


def xattrs(path):
    out = []
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        return ["<listxattr: %s>" % e.strerror]
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
            out.append("%s=<%s>" % (n, e.strerror))
            continue
        if short in HANDLE_XATTRS:
            # ovl_fb: version, magic, len, flags, type, uuid, fid. Keep magic and
            # flags (PATH_UPPER or not): the fid itself is per-copy.
            if len(v) >= 5 and v[1] == 0xFB:
                v = "fh(flags=%d)" % v[3]
            else:
                v = "fh(bad:%s)" % v.hex()
        else:
            v = repr(v)
        out.append("%s=%s" % (n, v))
    return out


def md5(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dump_upper(root):
    lines = []
    inodes = {}
    paths = [root]
    for dirpath, dirnames, filenames in os.walk(root):
        paths += [os.path.join(dirpath, n) for n in dirnames + filenames]
    for p in sorted(paths):
        rel = mask("/" + os.path.relpath(p, root)) if p != root else "/"
        st = os.lstat(p)
        m = st.st_mode
        if stat.S_ISCHR(m) and st.st_rdev == 0:
            lines.append("%s whiteout %s" % (rel, " ".join(xattrs(p))))
            continue
        if stat.S_ISDIR(m):
            d = "dir"
        elif stat.S_ISREG(m):
            d = "reg size=%d md5=%s nlink=%d" % (st.st_size, md5(p), st.st_nlink)
            if st.st_nlink > 1:
                inodes.setdefault(st.st_ino, []).append(rel)
        elif stat.S_ISLNK(m):
            d = "symlink ->%s nlink=%d" % (os.readlink(p), st.st_nlink)
        elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
            d = "%s rdev=%d:%d" % ("chr" if stat.S_ISCHR(m) else "blk",
                                   os.major(st.st_rdev), os.minor(st.st_rdev))
        else:
            d = "other"
        lines.append("%s %s mode=%o own=%d:%d %s" % (
            rel, d, stat.S_IMODE(m), st.st_uid, st.st_gid, " ".join(xattrs(p))))
    for ino, paths in sorted(inodes.items(), key=lambda kv: sorted(kv[1])):
        if len(paths) > 1:
            lines.append("hardlinks: " + " ".join(sorted(paths)))
    return lines


def index_summary(index):
    """Counts of index entries by kind (names hold per-copy file handles)."""
    if not os.path.isdir(index):
        return ["index: none"]
    kinds = {}
    for name in os.listdir(index):
        if name.startswith("#"):
            continue  # temp names and the kernel's shared whiteout
        st = os.lstat(os.path.join(index, name))
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            k = "whiteout"
        elif stat.S_ISDIR(st.st_mode):
            k = "dir"
        else:
            k = "file"
        kinds[k] = kinds.get(k, 0) + 1
    return ["index: " + " ".join("%s=%d" % kv for kv in sorted(kinds.items()))]


def main():
    if len(sys.argv) not in (2, 3):
        sys.stderr.write("usage: upperdump.py UPPERDIR [WORKDIR]\n")
        return 2
    lines = dump_upper(sys.argv[1])
    if len(sys.argv) == 3:
        lines += index_summary(os.path.join(sys.argv[2], "index"))
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
