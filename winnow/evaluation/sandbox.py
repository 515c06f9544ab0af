"""Run untrusted code (model answers, dataset tests) in a sandbox, never in-process.

bubblewrap (Debian/Ubuntu package ``bubblewrap``) gives a read-only view of the system, a private /tmp, one
writable throwaway directory, and new network, PID, IPC and UTS namespaces: no network at all, and killing
the sandbox's first process ends every process it started. On top: address-space, CPU-time, file-size and
process-count limits, and a wall-clock timeout after which the whole session is killed. Started as root,
the sandbox drops to ``nobody`` so the process-count limit applies (root is exempt from RLIMIT_NPROC).
There is no unsandboxed fallback: without bubblewrap, code rewards are an error.
"""
from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from winnow.errors import MissingDependencyError

NOBODY = 65534


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 5.0
    memory_mb: int = 512
    cpu_s: int = 10
    max_procs: int = 32
    max_file_mb: int = 16


@dataclass(frozen=True)
class SandboxResult:
    returncode: int | None  # None when killed at the timeout
    stdout: str
    stderr: str
    timed_out: bool

    @property
    def passed(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def bwrap_path() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise MissingDependencyError("code rewards run in a bubblewrap sandbox: apt-get install bubblewrap")
    return path


def sandbox_python() -> str:
    """A stdlib interpreter the sandbox user can execute: the system one if present (a venv under /root is
    not readable by ``nobody``), else this interpreter."""
    for cand in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(cand, os.X_OK):
            return cand
    return sys.executable


def _limit(limits: SandboxLimits, workdir: str) -> None:
    """Runs in the child before exec: own session, resource limits, unprivileged uid when root."""
    os.setsid()
    mem = limits.memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_file_mb << 20, limits.max_file_mb << 20))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_procs, limits.max_procs))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if os.getuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)


def run_python(code: str, *, limits: SandboxLimits = SandboxLimits(), stdin: str = "") -> SandboxResult:
    """Run ``code`` with the current Python interpreter inside the sandbox, in a fresh temporary directory."""
    bwrap = bwrap_path()
    with tempfile.TemporaryDirectory(prefix="winnow-sandbox-") as work:
        Path(work, "main.py").write_text(code)
        if os.getuid() == 0:
            os.chown(work, NOBODY, NOBODY)
            os.chmod(work, 0o700)
        cmd = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
               "--bind", work, work, "--chdir", work, "--unshare-all", "--die-with-parent", "--new-session",
               "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", work,
               sandbox_python(), "-I", "-S", "main.py"]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, preexec_fn=lambda: _limit(limits, work))
        try:
            out, err = proc.communicate(stdin, timeout=limits.timeout_s)
            return SandboxResult(proc.returncode, out[-10_000:], err[-10_000:], False)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):  # it may have ended on its own meanwhile
                os.killpg(proc.pid, signal.SIGKILL)  # the session: bwrap and, through its PID namespace, all
            out, err = proc.communicate()
            return SandboxResult(None, out[-10_000:], err[-10_000:], True)
