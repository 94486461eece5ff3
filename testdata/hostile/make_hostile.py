#!/usr/bin/env python3
"""Writes the hostile resources layers used by the tests. Run from this directory:
`python3 make_hostile.py`. Each file breaks exactly one rule of a release tarball."""
import gzip
import io
import tarfile

OK = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n"


def entry(name, data=b"", kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mtime = 0
    return info, (io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def write(path, entries, fmt=tarfile.USTAR_FORMAT):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=fmt) as tar:
        for info, data in entries:
            tar.addfile(info, data)
    with open(path, "wb") as out:
        out.write(gzip.compress(raw.getvalue(), mtime=0))


class Zeros(io.RawIOBase):
    """Streams n zero bytes without holding them."""

    def __init__(self, n):
        self.left = n

    def readable(self):
        return True

    def readinto(self, buf):
        n = min(len(buf), self.left)
        buf[:n] = bytes(n)
        self.left -= n
        return n


def bomb(path, size):
    with open(path, "wb") as out, gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            info = tarfile.TarInfo("_default/core.ConfigMap.big.yaml")
            info.size = size
            tar.addfile(info, io.BufferedReader(Zeros(size)))


write("absolute-path.tar.gz", [entry("/etc/core.ConfigMap.x.yaml", OK)])
write("parent-traversal.tar.gz", [entry("../../core.ConfigMap.x.yaml", OK)])
write("pax-traversal.tar.gz", [entry("a/" + "b" * 120 + "/../../../../core.ConfigMap.x.yaml", OK)], tarfile.PAX_FORMAT)
write("symlink.tar.gz", [entry("_default/core.ConfigMap.x.yaml", kind=tarfile.SYMTYPE, linkname="/etc/passwd")])
write("hardlink.tar.gz", [entry("_default/a.yaml", OK), entry("_default/b.yaml", kind=tarfile.LNKTYPE, linkname="/etc/passwd")])
write("char-device.tar.gz", [entry("_default/null.yaml", kind=tarfile.CHRTYPE)])
write("fifo.tar.gz", [entry("_default/pipe.yaml", kind=tarfile.FIFOTYPE)])
write("directory.tar.gz", [entry("_default", kind=tarfile.DIRTYPE), entry("_default/core.ConfigMap.ok.yaml", OK)])
write("duplicate-path.tar.gz", [entry("_default/core.ConfigMap.ok.yaml", OK), entry("_default/core.ConfigMap.ok.yaml", b"kind: Secret\n")])
write("not-yaml.tar.gz", [entry("_default/run.sh", b"#!/bin/sh\nrm -rf /\n")])
write("too-many-files.tar.gz", [entry(f"_default/core.ConfigMap.c{i}.yaml", b"") for i in range(20001)])
bomb("decompression-bomb.tar.gz", 300 << 20)
with open("not-gzip.tar.gz", "wb") as out:
    out.write(b"this is not a gzip stream\n" * 10)
