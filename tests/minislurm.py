"""A private one-node SLURM cluster on this machine, for the cluster test: Debian's packages (munge, slurmctld,
slurmd, slurm-client), every file (munge key and socket, slurm.conf, state, logs) in one directory, free ports,
no accounting, no cgroups, nothing of a system munge used. One path outside that directory: /etc/slurm/slurm.conf
becomes a symlink to its slurm.conf while the cluster runs (removed at stop), because the executor plugin's job
step drops SLURM_CONF from the environment of the `srun` it runs inside each job (jobstep plugin 0.6.1), so that
srun only finds the default path. A machine with its own /etc/slurm/slurm.conf is left alone (not usable here).
Needs root (slurmd launches the jobs, and the symlink).

    python tests/minislurm.py up DIR     # start one by hand; prints `export SLURM_CONF=...`
    python tests/minislurm.py down DIR
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "srun", "sinfo", "scontrol", "scancel")
PARTITION = "debug"
DEFAULT_CONF = Path("/etc/slurm/slurm.conf")
PREFIX = "infscale-slurm-"
HEADER = "# Written by tests/minislurm.py"


def _ours(path: Path) -> bool:
    """A symlink left by a mini cluster (running or crashed), which may be replaced."""
    if not path.is_symlink():
        return False
    target = Path(os.readlink(path))
    return not target.exists() or target.read_text().startswith(HEADER)


def missing() -> str | None:
    """Why a mini cluster cannot run here, or None when it can."""
    absent = [tool for tool in DAEMONS + CLIENTS if shutil.which(tool) is None]
    if absent:
        return (f"SLURM is not installed ({', '.join(absent)} not found); on Debian/Ubuntu: "
                "apt-get install munge slurmctld slurmd slurm-client")
    if os.geteuid() != 0:
        return "the one-node SLURM test runs slurmd, which needs root"
    if (DEFAULT_CONF.exists() or DEFAULT_CONF.is_symlink()) and not _ours(DEFAULT_CONF):
        return f"this machine has its own SLURM ({DEFAULT_CONF}); the test starts a private one and won't replace it"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_hardware() -> str:
    """CPUs, sockets, cores, threads and RealMemory of this host as slurmd itself detects them (`slurmd -C`):
    a node configured with more than slurmd finds would be drained."""
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("NodeName="))
    return " ".join(field for field in line.split() if not field.startswith("NodeName="))


class MiniSlurm:
    """munged + slurmctld + slurmd with one node (this host, all its CPUs) and one partition `debug`."""

    def __init__(self, root: str | Path | None = None):
        # munged wants its socket's directories traversable by everyone: not a pytest tmp dir (0700).
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix=PREFIX))
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        self.conf = self.root / "slurm.conf"
        self.socket = self.root / "munge" / "munge.sock"
        self.node = socket.gethostname().split(".")[0]
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        for var in [v for v in self.env if v.startswith("SLURM_") and v != "SLURM_CONF"]:
            del self.env[var]  # a test started inside a SLURM job must not leak that job's settings

    def write_config(self) -> None:
        r = self.root
        for d in ("munge", "key", "state", "spool", "log"):
            (r / d).mkdir(exist_ok=True)
        (r / "munge").chmod(0o755)
        (r / "key").chmod(0o700)
        self.conf.write_text(f"""\
{HEADER}: a one-node cluster for the SLURM workflow test.
ClusterName=infscale-test
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.socket}
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
# No cgroups (they need a writable cgroup tree, not given in containers) and no accounting database:
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
# One job per core, so two one-thread jobs share the node as they share it under `snakemake --cores 2`:
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# Finished jobs stay in squeue for an hour: without accounting, `squeue` is how Snakemake learns they ended.
MinJobAge=3600
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=10
NodeName={self.node} NodeAddr=127.0.0.1 {_node_hardware()} State=UNKNOWN
PartitionName={PARTITION} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
""")

    def _run(self, *cmd, check=True):
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, check=check, timeout=60)

    def start(self, timeout_s: float = 60) -> MiniSlurm:
        self.write_config()
        r = self.root
        DEFAULT_CONF.parent.mkdir(parents=True, exist_ok=True)
        if _ours(DEFAULT_CONF):
            DEFAULT_CONF.unlink()
        DEFAULT_CONF.symlink_to(self.conf)
        key = r / "key" / "munge.key"
        if not key.exists():
            self._run("mungekey", "--create", f"--keyfile={key}")
        self._run("munged", f"--socket={self.socket}", f"--key-file={key}", f"--pid-file={r}/munge/munged.pid",
                  f"--log-file={r}/log/munged.log", f"--seed-file={r}/munge/munged.seed")
        self._run("slurmctld", "-f", str(self.conf))
        self._run("slurmd", "-f", str(self.conf))
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            state = self._run("sinfo", "-h", "-N", "-o", "%T", check=False).stdout.strip()
            if state == "idle":
                return self
            time.sleep(0.5)
        raise RuntimeError(f"the mini SLURM node did not come up (state {state!r}); logs in {r}/log:\n"
                           + self.logs())

    def logs(self, tail: int = 20) -> str:
        out = []
        for log in sorted((self.root / "log").glob("*.log")):
            out.append(f"== {log}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-tail:]))
        return "\n".join(out)

    def stop(self) -> None:
        """Cancel what is left, stop the daemons (waiting for them to exit) and munged."""
        if not self.conf.exists():
            return
        self._run("scancel", "--full", "--user", "root", check=False)
        for pidfile in ("slurmd.pid", "slurmctld.pid", "munge/munged.pid"):
            path = self.root / pidfile
            try:
                pid = int(path.read_text().split()[0])
                os.kill(pid, signal.SIGTERM)
            except (OSError, ValueError, IndexError):
                continue
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
        if DEFAULT_CONF.is_symlink() and Path(os.readlink(DEFAULT_CONF)) == self.conf:
            DEFAULT_CONF.unlink()


if __name__ == "__main__":
    action, root = sys.argv[1], sys.argv[2]
    cluster = MiniSlurm(root)
    if action == "up":
        reason = missing()
        if reason:
            sys.exit(reason)
        cluster.start()
        print(f"export SLURM_CONF={cluster.conf}")
    else:
        cluster.stop()
