"""What the sandbox's harness applies to its own process before the program runs (docs/sandbox.md): no_new_privs,
a read-only view of the filesystem and no capabilities (in a user namespace), and a seccomp-bpf syscall filter.
ctypes and the standard library only: the harness runs this file's source without importing infscale.

The seccomp filter denies (EPERM): kill(-1, ...) (every process of the uid), sockets other than AF_UNIX, ptrace
and cross-process memory access, mount and namespaces (unshare, setns, clone with a CLONE_NEW* flag), kernel
keyrings, bpf, perf events, io_uring, userfaultfd, modules, kexec, reboot, swap, chroot. clone3 answers ENOSYS,
so the C library falls back to clone, whose flags a filter can read. A syscall from another ABI (32-bit int
0x80, x32) kills the process. x86_64 and aarch64 only.
"""
import ctypes
import errno
import platform
import socket

SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
LD_W_ABS, JEQ_K, JGE_K, JSET_K, RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
CLONE_NEW_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x80

# (audit arch, syscall numbers): denied, socket-like (AF_UNIX only), clone, clone3, kill
ARCHES = {
    "x86_64": (0xC000003E, {
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "mount": 165, "umount2": 166,
        "pivot_root": 155, "chroot": 161, "unshare": 272, "setns": 308, "add_key": 248, "request_key": 249,
        "keyctl": 250, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "init_module": 175,
        "finit_module": 313, "delete_module": 176, "kexec_load": 246, "kexec_file_load": 320, "reboot": 169,
        "swapon": 167, "swapoff": 168, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsmount": 432},
        {"socket": 41, "socketpair": 53}, 56, 435, 62),
    "aarch64": (0xC00000B7, {
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "mount": 40, "umount2": 39,
        "pivot_root": 41, "chroot": 51, "unshare": 97, "setns": 268, "add_key": 217, "request_key": 218,
        "keyctl": 219, "bpf": 280, "perf_event_open": 241, "userfaultfd": 282, "init_module": 105,
        "finit_module": 273, "delete_module": 106, "kexec_load": 104, "kexec_file_load": 294, "reboot": 142,
        "swapon": 224, "swapoff": 225, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsmount": 432},
        {"socket": 198, "socketpair": 199}, 220, 435, 129),
}


def filter_program(machine: str) -> list[tuple[int, int, int, int]]:
    """The BPF program as (code, jt, jf, k) rows; labels resolved to the relative jumps BPF needs."""
    if machine not in ARCHES:
        raise NotImplementedError(f"no seccomp filter for {machine}")
    arch, denied, socket_calls, clone, clone3, kill = ARCHES[machine]
    rows: list[tuple] = []  # (code, jt label or offset, jf label or offset, k)
    rows.append((LD_W_ABS, 0, 0, 4))  # seccomp_data.arch
    rows.append((JEQ_K, 0, "kill", arch))
    rows.append((LD_W_ABS, 0, 0, 0))  # seccomp_data.nr
    if machine == "x86_64":
        rows.append((JGE_K, "kill", 0, 0x40000000))  # the x32 ABI
    for nr in denied.values():
        rows.append((JEQ_K, "eperm", 0, nr))
    for nr in socket_calls.values():
        rows.append((JEQ_K, "unix_only", 0, nr))
    rows.append((JEQ_K, "clone", 0, clone))
    rows.append((JEQ_K, "enosys", 0, clone3))
    rows.append((JEQ_K, "kill_all", 0, kill))
    rows.append((RET_K, 0, 0, SECCOMP_RET_ALLOW))
    labels = {}
    labels["kill_all"] = len(rows)
    rows.append((LD_W_ABS, 0, 0, 16))  # kill(-1, sig): every process the uid may signal
    rows.append((JEQ_K, "eperm", "allow", 0xFFFFFFFF))
    labels["unix_only"] = len(rows)
    rows.append((LD_W_ABS, 0, 0, 16))  # low 32 bits of args[0] (little-endian): the address family
    rows.append((JEQ_K, "allow", "eperm", socket.AF_UNIX))
    labels["clone"] = len(rows)
    rows.append((LD_W_ABS, 0, 0, 16))  # clone's flags
    rows.append((JSET_K, "eperm", "allow", CLONE_NEW_FLAGS))
    labels["allow"] = len(rows)
    rows.append((RET_K, 0, 0, SECCOMP_RET_ALLOW))
    labels["eperm"] = len(rows)
    rows.append((RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.EPERM))
    labels["enosys"] = len(rows)
    rows.append((RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.ENOSYS))
    labels["kill"] = len(rows)
    rows.append((RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS))

    def offset(at: int, target) -> int:
        if isinstance(target, int):
            return target
        jump = labels[target] - at - 1
        assert 0 <= jump < 256, "BPF jumps are forward and under 256"
        return jump

    return [(code, offset(i, jt), offset(i, jf), k) for i, (code, jt, jf, k) in enumerate(rows)]


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def set_no_new_privs() -> None:
    """No setuid binary (su, sudo, ping) can give this process or its children privileges back."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")


def install_filter() -> None:
    """Install the filter on this process and its future children (irreversibly); OSError when refused."""
    rows = filter_program(platform.machine())
    program = (_SockFilter * len(rows))(*[_SockFilter(*row) for row in rows])
    fprog = _SockFprog(len(rows), program)
    set_no_new_privs()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")


MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_RELATIME = 1024, 2048, 4096, 1 << 21
MOUNT_OPTION_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": MS_NOATIME,
                      "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME}
PR_CAPBSET_DROP, LINUX_CAPABILITY_VERSION_3, CAP_LAST = 24, 0x20080522, 63


def _unescape(field: str) -> str:
    """A mountinfo path: spaces, tabs, newlines and backslashes are octal escapes."""
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def remount_read_only(keep: tuple[str, ...]) -> list[str]:
    """Remount every mount of this (private) mount namespace read-only, but those at or under `keep`; the mount
    points that refused, [] when all did. Each keeps its own nosuid/nodev/noexec/atime flags (a user namespace
    may not clear them)."""
    libc = ctypes.CDLL(None, use_errno=True)
    failed = []
    with open("/proc/self/mountinfo") as f:
        mounts = [(_unescape(line.split()[4]), line.split()[5].split(",")) for line in f]
    for point, options in mounts:
        if any(point == k or point.startswith(k.rstrip("/") + "/") for k in keep):
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for option in options:
            flags |= MOUNT_OPTION_FLAGS.get(option, 0)
        if libc.mount(None, point.encode(), None, flags, None) != 0:
            failed.append(point)
    return failed


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_capabilities() -> None:
    """Empty the bounding set (so no later exec, even as uid 0, gets a capability back) and the effective,
    permitted and inheritable sets: the user namespace's root becomes an ordinary user of its own files."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    for cap in range(CAP_LAST + 1):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() != errno.EINVAL:
            raise OSError(ctypes.get_errno(), f"prctl(PR_CAPBSET_DROP, {cap}) failed")
    header, data = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")
