"""Attach an XDP program that drops every frame to an interface of the
current namespace, for as long as this process lives (a BPF link: closed,
and the program gone, when the process exits).  No compiler, no object
file, no bpffs pin: two instructions loaded through the bpf(2) syscall.

    python xdp_drop.py IFACE     # prints "ready", detaches at EOF or a line on stdin

The tests use it to give an interface XDP (``ip -d link show`` says
``xdp``), which ``vrrpfw prove`` must call "cannot tell"."""

from __future__ import annotations

import ctypes
import os
import platform
import socket
import struct
import sys

SYS_BPF = {"x86_64": 321, "aarch64": 280}[platform.machine()]
BPF_PROG_LOAD, BPF_LINK_CREATE = 5, 28
BPF_PROG_TYPE_XDP, BPF_XDP = 6, 37
XDP_DROP = 1


def bpf(cmd: int, attr: bytearray) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    buf = ctypes.create_string_buffer(bytes(attr), len(attr))
    fd = libc.syscall(SYS_BPF, cmd, buf, len(attr))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(fd)


def attach(iface: str) -> int:
    # r0 = XDP_DROP; exit
    insns = ctypes.create_string_buffer(struct.pack("<BBhi", 0xB7, 0, 0, XDP_DROP)
                                        + struct.pack("<BBhi", 0x95, 0, 0, 0))
    lic = ctypes.create_string_buffer(b"GPL")
    load = bytearray(128)  # union bpf_attr, BPF_PROG_LOAD
    struct.pack_into("<IIQQ", load, 0, BPF_PROG_TYPE_XDP, 2, ctypes.addressof(insns), ctypes.addressof(lic))
    struct.pack_into("<I", load, 68, BPF_XDP)  # expected_attach_type
    prog = bpf(BPF_PROG_LOAD, load)
    link = bytearray(128)  # BPF_LINK_CREATE: prog_fd, target_ifindex, attach_type, flags
    struct.pack_into("<IIII", link, 0, prog, socket.if_nametoindex(iface), BPF_XDP, 0)
    return bpf(BPF_LINK_CREATE, link)


if __name__ == "__main__":
    attach(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()
