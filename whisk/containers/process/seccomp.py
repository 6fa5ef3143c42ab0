"""The seccomp filter of the `process://` sandbox (given to bwrap as `--seccomp FD`): no user namespaces, and none
of the few system calls that reach state outside the container or much kernel code an action never needs.

Without capabilities a container's user can create no namespace but a user namespace, which would give it a full
set of capabilities inside that namespace: not over the host's files, but over much kernel code a sandbox never
needs (and the usual way kernel bugs are reached). Docker's default profile refuses it too. The filter, as classic
BPF over `struct seccomp_data` (nr at 0, arch at 4, args from 16; the low half of an argument first on these
little-endian machines):
  * a system call of another ABI (i386 through int 0x80, x32) fails with EPERM: its numbers mean other calls;
  * clone and unshare with CLONE_NEWUSER in their flags fail with EPERM;
  * clone3 fails with ENOSYS (its flags are in memory, out of a filter's reach): the C library falls back to clone;
  * the kernel keyring calls (add_key, request_key, keyctl) fail with EPERM: keyrings belong to the uid and outlive
    the container, and a uid comes back with a pid (`sandbox.UID_BASE`), so a later container, another tenant's,
    would find what this one left there (Docker's default profile refuses them too);
  * io_uring, bpf, perf_event_open and userfaultfd fail with EPERM, as in Docker's default profile: large kernel
    surfaces no runtime uses;
  * socket with AF_VSOCK fails with EPERM, as in Docker's default profile: vsock is not confined by a network
    namespace, so on a virtual machine an action would listen for, or call, the hypervisor's side (and other guests
    where the hypervisor relays them) past the sandbox's empty network;
  * everything else is allowed.
"""

from __future__ import annotations

import platform
import struct
from typing import Any

# arch (AUDIT_ARCH_*), clone, unshare, clone3, socket, and whether numbers with the x32 bit exist on it
_ARCHES = {"x86_64": (0xC000003E, 56, 272, 435, 41, True), "aarch64": (0xC00000B7, 220, 97, 435, 198, False)}
# Refused outright (EPERM), per arch: add_key, request_key, keyctl, io_uring_setup, io_uring_enter,
# io_uring_register, bpf, perf_event_open, userfaultfd.
_DENIED = {"x86_64": (248, 249, 250, 425, 426, 427, 321, 298, 323),
           "aarch64": (217, 218, 219, 425, 426, 427, 280, 241, 282)}
CLONE_NEWUSER = 0x10000000
AF_VSOCK = 40
X32_BIT = 0x40000000
EPERM, ENOSYS = 1, 38
_LD_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _ERRNO = 0x7FFF0000, 0x00050000


def program(machine: str | None = None) -> bytes | None:
    """The filter for this machine's architecture; None where it is not known (the sandbox then goes without)."""
    machine = machine or platform.machine()
    arch = _ARCHES.get(machine)
    if arch is None:
        return None
    audit_arch, clone, unshare, clone3, socket, x32 = arch
    # ([label,] code, jump-if-true label, jump-if-false label, k); labels name the instruction to go to, None = the
    # next one; a leading label names the instruction itself.
    code: list[tuple[Any, ...]] = [
        (_LD_ABS, None, None, 4),                       # A = arch
        (_JEQ, "native", "eperm", audit_arch),
        ("native", _LD_ABS, None, None, 0),             # A = nr
        *([(_JGE, "eperm", None, X32_BIT)] if x32 else []),
        (_JEQ, "enosys", None, clone3),
        *[(_JEQ, "eperm", None, nr) for nr in _DENIED[machine]],
        (_JEQ, "flags", None, unshare),
        (_JEQ, "flags", None, clone),
        (_JEQ, "family", "allow", socket),
        ("flags", _LD_ABS, None, None, 16),             # A = the low half of args[0]: the flags
        (_JSET, "eperm", "allow", CLONE_NEWUSER),
        ("family", _LD_ABS, None, None, 16),            # A = the low half of args[0]: the address family (an int)
        (_JEQ, "eperm", "allow", AF_VSOCK),
        ("allow", _RET, None, None, _ALLOW),
        ("enosys", _RET, None, None, _ERRNO | ENOSYS),
        ("eperm", _RET, None, None, _ERRNO | EPERM),
    ]
    insns = [i if isinstance(i[0], str) else (None, *i) for i in code]
    where = {label: n for n, (label, *_rest) in enumerate(insns) if label}
    out = b""
    for n, (_label, op, jt, jf, k) in enumerate(insns):
        offset = lambda label: 0 if label is None else where[label] - n - 1  # noqa: E731
        out += struct.pack("<HBBI", op, offset(jt), offset(jf), k)
    return out
