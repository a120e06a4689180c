"""Running untrusted, model-written Python against its asserts: the one entry point the grader and any verifier
call (docs/sandbox.md).

`run_program(program, tests)` runs the program and then each test in a fresh interpreter (`sys.executable -I`)
in a fresh temporary directory, and grades it `passed` only when the harness, after the last assert, writes a
per-run random token that it reads at that moment from a pipe the program was never told about. The layers:

  process     its own interpreter, a new session (killed as a process group at the wall-clock timeout), stdin
              /dev/null, stdout and stderr to a capped file, a scrubbed environment, a fresh temporary directory
  rlimits     address space, CPU seconds, file size, open files, processes, no core files; each clamped to the
              hard limit already in force
  pid_ns      its own PID namespace (`unshare --pid --fork --kill-child`): every process it starts, also one that
              leaves the session with setsid, dies with it; it cannot see or signal the host's processes
  net_ns      its own network namespace: no interface but a loopback that is down, so no connection anywhere
  mount_ns    its own mount namespace: a private /proc, and /tmp, /var/tmp and /dev/shm one size-capped tmpfs (nosuid,
              nodev, noexec) where it starts, gone with it
  uid         (as root) an unprivileged uid of its own, no groups, no_new_privs: it cannot write or delete what it
              does not own, and RLIMIT_NPROC (not enforced for root) bounds a fork bomb
  user_ns     (without root) the namespaces above inside a user namespace, whose root keeps no capability
  readonly_fs (in a user namespace, where the program owns our files) every mount but its tmpfs and /proc
              read-only
  uid_sweep   (as root without a PID namespace) every process of that uid killed after the run
  seccomp     a syscall filter: no sockets but AF_UNIX, no kill(-1), ptrace, mount, namespaces, keyrings, bpf, ...

What the machine does not allow is left out and not reported; `ExecutionResult.layers` names those applied.
"""
from __future__ import annotations

import functools
import json
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

STATUSES = ("passed", "failed", "timeout", "error", "memory")
TOKEN_BYTES = 16  # hex-encoded: 32 characters
DETAIL_CHARS = 300

MEMORY_MB = 1024
FILE_MB = 16  # files it writes and its stdout + stderr together (one output file, RLIMIT_FSIZE)
OPEN_FILES = 64
PROCESSES = 16  # with MEMORY_MB each: the most memory one candidate can hold
TMPFS_MB = 64  # its /tmp in a mount namespace (in memory)
# uids for candidates when running as root: a random one per run so that RLIMIT_NPROC counts only its own processes
UID_BASE, UID_RANGE = 1_500_000_000, 1_000_000

ISOLATIONS = ("auto", "no_namespaces")
# the namespaces tried, most first: a container may allow a network namespace but refuse to mount a new /proc
NAMESPACE_SETS = (
    (("pid_ns", "net_ns", "mount_ns"), ("--pid", "--fork", "--kill-child", "--net", "--mount", "--mount-proc")),
    (("pid_ns", "net_ns"), ("--pid", "--fork", "--kill-child", "--net")),
    (("net_ns",), ("--net",)),
)
# without root: the same inside a user namespace (where the kernel allows unprivileged ones), its root mapped to us
USER_NS = (("user_ns",), ("--user", "--map-root-user"))
# in a user namespace the program is the owner of our files: every mount but these becomes read-only
WRITABLE_MOUNTS = ("/tmp", "/var/tmp", "/dev/shm", "/proc")


@dataclass(frozen=True)
class ExecutionResult:
    passed: bool
    status: str  # one of STATUSES
    detail: str = ""
    layers: tuple[str, ...] = ()
    wall_s: float = 0.0
    output: str = field(default="", repr=False)  # the tail of its stdout + stderr


# The harness: trusted code in the candidate's interpreter. It keeps its own references to what it needs before
# the program runs (the program may replace builtins and os functions), drops privileges, runs the program and
# each test, and reads the token only after the last test passed. argv: result fd, token fd, options (JSON).
HARNESS = r"""
def _harness():
    import builtins, json, os, resource, signal, sys
    _write, _read, _exit, _compile, _exec = os.write, os.read, os._exit, compile, exec
    _BaseException, _MemoryError, _type, _str, _enumerate = BaseException, MemoryError, type, str, enumerate
    result_fd, token_fd = int(sys.argv[1]), int(sys.argv[2])
    options = json.loads(sys.argv[3])
    payload = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)

    _stdout, _stderr = sys.stdout, sys.stderr

    def flush():
        try:
            _stdout.flush()
            _stderr.flush()
        except _BaseException:
            pass

    def report(kind, text=""):
        line = (kind + " " + text.replace("\n", " ")[:300] + "\n").encode("utf-8", "replace")
        _write(result_fd, line)

    guard = {"__name__": "infscale_confinement"}
    _exec(_compile(payload["confinement"], "infscale/evaluation/confinement.py", "exec"), guard)
    layers = []
    uid = options.get("uid")
    if uid is not None:
        # The interpreter may live where the unprivileged uid cannot look up paths (pyenv under a 0700 /root):
        # reach each import directory through an open descriptor instead, which needs no search permission above.
        for i, entry in _enumerate(list(sys.path)):
            if entry and os.path.isdir(entry):
                sys.path[i] = "/proc/self/fd/" + _str(os.open(entry, os.O_RDONLY | os.O_DIRECTORY))
        sys.path_importer_cache.clear()
    if options.get("mount_ns"):
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        # a size-capped tmpfs (nosuid, nodev, noexec) as /tmp, /var/tmp and /dev/shm: its files never reach the
        # host's disk and vanish with the namespace
        tmpfs_options = "size=" + _str(options["tmpfs_mb"]) + "m,nr_inodes=4096,mode=0700"
        if uid is not None:
            tmpfs_options += ",uid=" + _str(uid) + ",gid=" + _str(uid)
        flags = 2 | 4 | 8  # MS_NOSUID | MS_NODEV | MS_NOEXEC
        steps = [(b"tmpfs", "/tmp", b"tmpfs", flags, tmpfs_options.encode())]
        steps += [(b"/tmp", t, None, 4096, None) for t in ("/var/tmp", "/dev/shm") if os.path.isdir(t)]  # MS_BIND
        for source, target, kind, flag, data in steps:
            if libc.mount(source, target.encode(), kind, flag, data) != 0:
                report("ERROR", "mount on " + target + " failed: " + os.strerror(ctypes.get_errno()))
                _exit(70)
        os.chdir("/tmp")
        layers.append("mount_ns")
    if options.get("user_ns"):  # we are root of our own user namespace, and the program would be
        if options.get("mount_ns"):
            refused = guard["remount_read_only"](tuple(options["writable"]))
            if refused:
                report("ERROR", "could not make read-only: " + ", ".join(refused[:5]))
                _exit(70)
            layers.append("readonly_fs")
        guard["drop_capabilities"]()
        layers.append("user_ns")
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        guard["set_no_new_privs"]()
        layers.append("uid")
    for name, value in options["limits"].items():
        which = getattr(resource, name)
        soft, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))
    layers.append("rlimits")
    if options.get("seccomp"):
        try:
            guard["install_filter"]()
            layers.append("seccomp")
        except (OSError, NotImplementedError):
            pass
    report("LAYERS", ",".join(layers))

    me = os.getpid()  # a copy of this process that the program forked stops at the end, reporting nothing
    _getpid = os.getpid
    env = {"__name__": "__candidate__", "__builtins__": builtins}
    stage = "program"
    try:
        _exec(_compile(payload["program"], "<program>", "exec"), env)
        for i, test in _enumerate(payload["tests"]):
            stage = "test " + _str(i)
            _exec(_compile(test, "<test " + _str(i) + ">", "exec"), env)
    except _MemoryError:
        if _getpid() != me:
            _exit(0)
        report("MEMORY", stage)
        flush()
        _exit(3)
    except _BaseException as e:
        if _getpid() != me:
            _exit(0)
        try:
            what = _type(e).__name__ + ": " + _str(e)
        except _BaseException:
            what = "an exception that cannot be printed"
        report("FAIL", stage + ": " + what)
        flush()
        _exit(1)
    if _getpid() != me:
        _exit(0)
    token = b""
    while len(token) < 32:
        chunk = _read(token_fd, 32 - len(token))
        if not chunk:
            break
        token += chunk
    _write(result_fd, b"PASS " + token + b"\n")
    flush()
    _exit(0)

_harness()
"""


def _limits(timeout_s: float, memory_mb: int) -> dict[str, int]:
    cpu = math.ceil(timeout_s) + 1
    return {"RLIMIT_AS": memory_mb << 20, "RLIMIT_CPU": cpu, "RLIMIT_FSIZE": FILE_MB << 20,
            "RLIMIT_NOFILE": OPEN_FILES, "RLIMIT_NPROC": PROCESSES, "RLIMIT_CORE": 0}


@functools.lru_cache(maxsize=None)
def namespaces_available() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(layers, unshare flags) of the most namespaces this machine lets us create: as root, or else inside a
    user namespace; ((), ()) when none."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return (), ()
    for layers, flags in NAMESPACE_SETS:
        if os.geteuid() != 0:
            layers, flags = USER_NS[0] + layers, USER_NS[1] + flags
        try:
            done = subprocess.run([unshare, *flags, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return (), ()
        # and the harness must set itself up there (mounts, read-only remounts): else every program would error
        if done.returncode == 0 and _run("x = 1", ["assert x == 1"], 30, MEMORY_MB, (layers, flags), False).passed:
            return layers, flags
    return (), ()


@functools.lru_cache(maxsize=None)
def _confinement_source() -> str:
    return (Path(__file__).parent / "confinement.py").read_text()


def _scrubbed_env(home: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def _processes_of(uid: int) -> list[int]:
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def _kill_uid(uid: int) -> None:
    """Kill every process of a sandbox uid (it may have left the session); repeat until none is left."""
    for _ in range(50):
        pids = _processes_of(uid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)


def _classify(returncode: int | None, timed_out: bool, lines: list[str], token: str, output: str,
              timeout_s: float) -> tuple[str, str]:
    if f"PASS {token}" in lines:  # only the harness, after the last test, knows the token
        return "passed", "all tests passed"
    kinds = {}
    for line in lines:  # the first of each kind: the harness writes before anything the program could
        kind, _, text = line.partition(" ")
        kinds.setdefault(kind, text)
    if "PASS" in kinds:
        return "failed", "a forged pass token"
    if timed_out:
        return "timeout", f"wall-clock limit of {timeout_s:g} s"
    if "MEMORY" in kinds:
        return "memory", f"MemoryError in {kinds['MEMORY'].strip()}"
    if "FAIL" in kinds:
        return "failed", kinds["FAIL"].strip()
    if "ERROR" in kinds:
        return "error", kinds["ERROR"].strip()
    if returncode is not None and returncode < 0:
        sig = -returncode
        if sig == signal.SIGXCPU and "LAYERS" in kinds:
            return "timeout", "CPU-time limit (SIGXCPU)"
        if sig == signal.SIGKILL and "LAYERS" in kinds:
            return "timeout", "killed by SIGKILL: the CPU-time limit (or the kernel's out-of-memory killer)"
        if sig == signal.SIGXFSZ:
            return "error", "file-size or output limit exceeded (SIGXFSZ)"
        if sig == signal.SIGSEGV:
            return "error", "segmentation fault"
        return "error", f"killed by {signal.Signals(sig).name}"
    if "LAYERS" not in kinds:
        return "error", f"the sandbox did not start (exit {returncode}): {output[-200:].strip()}"
    return "failed", f"exited (status {returncode}) before the tests finished"


def run_program(program: str, tests: list[str], timeout_s: float = 4.0, *, memory_mb: int = MEMORY_MB,
                isolation: str = "auto", site_packages: bool = False) -> ExecutionResult:
    """Run `program` then each test (a statement, e.g. an assert) in a sandbox; passed only when all tests ran.

    isolation: "auto" applies every layer the machine allows; "no_namespaces" all but the namespaces: what a
    machine without them gets (tests use it to cover that path). site_packages: whether the program may import
    the installed packages (numpy, ...); by default the standard library only (`python -I -S`): less for a
    program to reach (no torch, no infscale)."""
    if isolation not in ISOLATIONS:
        raise ValueError(f"isolation must be one of {', '.join(ISOLATIONS)}, got {isolation!r}")
    if not isinstance(tests, (list, tuple)) or not all(isinstance(t, str) for t in tests):
        raise TypeError("tests must be a list of strings (statements such as asserts)")
    namespaces = namespaces_available() if isolation == "auto" else ((), ())
    return _run(program, list(tests), timeout_s, memory_mb, namespaces, site_packages)


def _run(program: str, tests: list[str], timeout_s: float, memory_mb: int,
         namespaces: tuple[tuple[str, ...], tuple[str, ...]], site_packages: bool) -> ExecutionResult:
    started = time.monotonic()
    ns_layers, ns_flags = namespaces
    as_root = os.geteuid() == 0
    uid = UID_BASE + secrets.randbelow(UID_RANGE) if as_root else None
    token = secrets.token_hex(TOKEN_BYTES)
    workdir = tempfile.mkdtemp(prefix="infscale-sandbox-")
    outdir = tempfile.mkdtemp(prefix="infscale-sandbox-out-")
    proc = None
    try:
        os.chmod(workdir, 0o700)
        if uid is not None:
            os.chown(workdir, uid, uid)
        limits = _limits(timeout_s, memory_mb)
        if not as_root and "user_ns" not in ns_layers:  # RLIMIT_NPROC counts all of our processes
            limits["RLIMIT_NPROC"] += len(_processes_of(os.getuid()))
        options = {"limits": limits, "uid": uid, "mount_ns": "mount_ns" in ns_layers,
                   "user_ns": "user_ns" in ns_layers, "writable": WRITABLE_MOUNTS, "seccomp": True,
                   "tmpfs_mb": TMPFS_MB}
        result_r, result_w = os.pipe()
        token_r, token_w = os.pipe()
        os.write(token_w, token.encode())
        os.close(token_w)
        output_path = os.path.join(outdir, "output")
        flags = ["-I"] if site_packages else ["-I", "-S"]
        command = [sys.executable, *flags, "-c", HARNESS, str(result_w), str(token_r), json.dumps(options)]
        if ns_flags:
            command = [shutil.which("unshare"), *ns_flags, *command]
        payload = json.dumps({"program": program, "tests": list(tests), "confinement": _confinement_source()}).encode()
        env = _scrubbed_env("/tmp" if "mount_ns" in ns_layers else workdir)
        with open(output_path, "wb") as output:
            proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=output, stderr=subprocess.STDOUT,
                                    cwd=workdir, env=env, pass_fds=(result_w, token_r), start_new_session=True)
        os.close(result_w)
        os.close(token_r)
        timed_out = False
        try:
            proc.communicate(payload, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        except BrokenPipeError:  # it died before reading its program
            proc.wait(timeout=timeout_s)
        _kill_group(proc)
        if uid is not None and "pid_ns" not in ns_layers:
            _kill_uid(uid)
        os.set_blocking(result_r, False)
        raw = b""
        try:
            while len(raw) < 65536 and (chunk := os.read(result_r, 65536)):
                raw += chunk
        except BlockingIOError:
            pass
        os.close(result_r)
        lines = raw.decode("utf-8", "replace").splitlines()
        output_text = _tail(output_path)
        status, detail = _classify(proc.returncode, timed_out, lines, token, output_text, timeout_s)
        applied = ["process", "tempdir"]
        for line in lines:
            if line.startswith("LAYERS "):
                applied += [layer for layer in line[7:].split(",") if layer]
                break
        applied += [layer for layer in ns_layers if layer not in ("mount_ns", "user_ns")]  # the harness reports those
        if uid is not None and "pid_ns" not in ns_layers:
            applied.append("uid_sweep")
        return ExecutionResult(status == "passed", status, detail[:DETAIL_CHARS], tuple(applied),
                               time.monotonic() - started, output_text)
    finally:
        if proc is not None and proc.poll() is None:
            _kill_group(proc)
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(outdir, ignore_errors=True)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _tail(path: str, chars: int = 2000) -> str:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - chars))
        return f.read().decode("utf-8", "replace")


def sandbox_workers(threads: int | None = None) -> int:
    """Programs run at once: the job's threads (Snakemake's `threads`) when given, else SLURM_CPUS_PER_TASK,
    else the cores this process may run on."""
    if threads:
        return max(1, int(threads))
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        return int(slurm)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def run_programs(jobs: list[tuple[str, list[str]]], timeout_s: float = 4.0, *, threads: int | None = None,
                 **options) -> list[ExecutionResult]:
    """run_program over many (program, tests), `sandbox_workers(threads)` at a time, results in order."""
    with ThreadPoolExecutor(max_workers=sandbox_workers(threads)) as pool:
        return list(pool.map(lambda job: run_program(job[0], job[1], timeout_s, **options), jobs))

