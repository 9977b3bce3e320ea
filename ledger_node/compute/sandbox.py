"""Launcher of untrusted work: a child process that holds no key and can reach nothing.

Remote-run parses and runs bundles that publishers wrote, so that work never happens in
the API process (it holds the operator key, the session secret and every content key).
`run_python` starts ``python -I <args>`` in a fresh work folder with:

* a minimal environment (no GRIDMART_* variable, HOME and TMPDIR inside the work folder,
  one thread for OpenMP/BLAS/numba), no inherited file descriptors, its own session;
* resource limits (address space, CPU seconds, file size, open files, processes, no core
  files, via util-linux ``prlimit``) and a wall-clock timeout after which the whole
  process group is killed;
* when the server runs as root: uid/gid 65534 (``nobody``) with no groups, no
  capabilities and no-new-privs (``setpriv``); what the work folder holds is chowned to
  it, the folder itself stays root's (0711), so the run cannot swap ``out`` for a link;
* where the kernel allows (``unshare``): new network (no interface but a down loopback),
  PID (every process dies with the run; a fresh /proc shows no other process, so not the
  server's memory or environment), IPC and mount namespaces; in the mount namespace
  the data folder GRIDMART_HOME is covered by an empty tmpfs, a folder closed to others
  that holds the interpreter (pyenv under /root) is replaced by a tmpfs exposing only the
  interpreter, and the temporary folder by a tmpfs holding only this run's work folder
  (concurrent runs share uid 65534: they must not see each other's data). Without
  unshare the run falls back to the uid and limits alone.

The parent reads back only regular files the child wrote, up to a size cap.
"""
from __future__ import annotations

import ctypes
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ledger_node.config import get_settings as ledger_settings

SANDBOX_UID = SANDBOX_GID = 65534  # nobody / nogroup
_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
            "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 120.0
    cpu_seconds: int = 120
    memory_bytes: int = 3 << 30  # address space: importing pandas, scikit-learn and datashader takes ~1.5 GiB
    file_bytes: int = 1 << 30
    open_files: int = 256
    processes: int = 256  # counted per uid, threads included
    output_bytes: int = 64 << 20


#: how running out of address space shows on stderr (Python, libc, C++, the loader mapping a library)
_OUT_OF_MEMORY = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "failed to map segment")


class SandboxError(Exception):
    """The child did not finish (``kind``: timeout, memory, crash or output) or could not be
    started safely (``unavailable``)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind, self.message = kind, message


@dataclass(frozen=True)
class Finished:
    returncode: int
    stderr_tail: str


@dataclass(frozen=True)
class Isolation:
    """What this machine allows; probed once (``describe`` says it in the log and docs)."""

    as_nobody: bool
    namespaces: bool

    def describe(self) -> str:
        who = "uid 65534" if self.as_nobody else "the server's uid"
        ns = "network/PID/IPC/mount namespaces" if self.namespaces else "NO namespaces (unshare failed)"
        return f"sandbox: {who}, {ns}, resource limits"


def new_workdir() -> Path:
    """A fresh 0700 folder outside the data folder; the child may write only here."""
    return Path(tempfile.mkdtemp(prefix="gridmart-run-"))


def remove_workdir(work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)


@lru_cache
def isolation() -> Isolation:
    as_nobody = os.geteuid() == 0
    probe = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--ipc", "--mount", "--mount-proc", "true"]
    if not as_nobody:
        probe.insert(1, "--map-root-user")
    try:
        ok = shutil.which("unshare") is not None and subprocess.run(
            probe, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return Isolation(as_nobody=as_nobody, namespaces=ok)


@dataclass(frozen=True)
class Mount:
    """A host path shown inside the run at ``work/<target>`` (read-only unless ``writable``)."""

    source: Path
    target: str
    writable: bool = False


@dataclass(frozen=True)
class Options:
    """How `start` runs: the interpreter and its flags (``-I`` for the project's own workers,
    ``-E -s`` for a bundle's entry so its folder is on sys.path), network (environment
    builds only), mounts, extra variables, folders to hide, the working directory inside
    ``work``, and where stdout+stderr go (``log``: a parent-owned file, kept to ``log_limit``
    bytes; ``on_line`` sees every line)."""

    python: str = sys.executable
    flags: tuple[str, ...] = ("-I",)
    network: bool = False
    mounts: tuple[Mount, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    hide: tuple[Path, ...] = ()
    cwd: str = ""
    log: Path | None = None
    log_limit: int = 1 << 20
    on_line: Callable[[str], None] | None = None


class Running:
    """A started run: ``wait`` for it (Finished, or SandboxError), ``cancel`` it from any thread."""

    def __init__(self, args: list[str], work: Path, limits: Limits, options: Options):
        iso = isolation()
        if not iso.as_nobody and not iso.namespaces:  # the run would have the server's uid and see its files
            raise SandboxError("unavailable", "remote runs are off on this server: it runs as a non-root user "
                                              "without user namespaces (unshare), so a run could not be kept "
                                              "from its keys")
        if (options.mounts or options.hide) and not iso.namespaces:
            raise SandboxError("unavailable", "this server cannot run jobs: mounting their folders needs mount "
                                              "namespaces (unshare), which this kernel refuses")
        for sub in ("home", "tmp", "out"):
            (work / sub).mkdir(exist_ok=True)
        if iso.as_nobody:  # the folder stays root's, so the run cannot swap `out` for a link; what is in it is nobody's
            _chown_tree(work)
            os.chmod(work, 0o711)
        self.limits, self.cancelled = limits, False
        self._tail = bytearray()
        command = _command(iso, args, work, limits, options)
        env = {**_environment(work), **dict(options.env)}
        if options.log is None:  # stderr only, to a file of the parent's outside work
            self._sink = tempfile.TemporaryFile(prefix="gridmart-run-stderr-")
            self.proc = subprocess.Popen(command, cwd=work, env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=self._sink, close_fds=True,
                                         start_new_session=True, preexec_fn=_die_with_parent)
            self._reader = None
        else:
            self._sink = open(options.log, "ab")
            self.proc = subprocess.Popen(command, cwd=work, env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, close_fds=True,
                                         start_new_session=True, preexec_fn=_die_with_parent)
            self._reader = threading.Thread(target=self._copy, args=(options,), daemon=True)
            self._reader.start()

    def _copy(self, options: Options) -> None:
        """Drain the run's output into the log (up to its cap; the rest is dropped, never
        blocking the run) and hand each line to ``on_line``."""
        kept, partial = self._sink.tell(), b""
        for chunk in iter(lambda: self.proc.stdout.read1(65536), b""):
            self._tail = (self._tail + chunk)[-4096:]
            if kept < options.log_limit:
                piece = chunk[:options.log_limit - kept]
                self._sink.write(piece)
                self._sink.flush()
                kept += len(piece)
                if kept >= options.log_limit:
                    self._sink.write(b"\n[log truncated: the rest of the output was dropped]\n")
                    self._sink.flush()
            if options.on_line:
                *lines, partial = (partial + chunk).split(b"\n")
                partial = partial[-4096:]
                for line in lines:
                    options.on_line(line.decode(errors="replace"))

    def cancel(self) -> None:
        self.cancelled = True
        _kill(self.proc)

    def wait(self) -> Finished:
        limits = self.limits
        try:
            try:
                returncode = self.proc.wait(timeout=limits.wall_seconds)
            except subprocess.TimeoutExpired:
                _kill(self.proc)
                raise SandboxError("timeout", f"the run took longer than {limits.wall_seconds:g} s and was stopped")
            finally:
                _kill(self.proc)  # anything the child left in its group
                if self._reader is not None:
                    self._reader.join()
                    self.proc.stdout.close()
            if self._reader is None:
                self._sink.seek(max(0, os.fstat(self._sink.fileno()).st_size - 4096))
                self._tail = bytearray(self._sink.read())
        finally:
            self._sink.close()
        tail = self._tail.decode(errors="replace")
        if self.cancelled:
            raise SandboxError("cancelled", "the run was cancelled")
        if returncode == 0:
            return Finished(returncode, tail)
        if any(sign in tail for sign in _OUT_OF_MEMORY):
            raise SandboxError("memory", f"the run needed more than its {limits.memory_bytes >> 20} MiB of memory")
        if returncode in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
            raise SandboxError("timeout", f"the run used more than {limits.cpu_seconds} s of CPU and was stopped")
        if returncode in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ) or "File too large" in tail:
            raise SandboxError("crash", f"the run was stopped writing a file past its {limits.file_bytes >> 20} MiB limit")
        raise SandboxError("crash", f"the run failed (exit status {returncode})")


def start(args: list[str], work: Path, limits: Limits = Limits(), options: Options = Options()) -> Running:
    """Start ``<python> <flags> <args>`` sandboxed in ``work`` and return its handle."""
    return Running(args, work, limits, options)


def run_python(args: list[str], work: Path, limits: Limits = Limits()) -> Finished:
    """Run ``python -I <args>`` sandboxed in ``work``; raises SandboxError if it was killed,
    hit a limit or crashed. The caller then reads what it wrote with ``read_output``."""
    return start(args, work, limits).wait()


def read_output(work: Path, name: str, limit: int) -> bytes | None:
    """Bytes of ``work/out/<name>`` if the child wrote it as a regular file; never follows a
    link (the child could point one at a file only the parent may read); None if absent."""
    try:
        fd = os.open(work / "out" / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SandboxError("output", f"the run left an unusable {name}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            raise SandboxError("output", f"the run left {name} as something other than a plain file")
        if info.st_size > limit:
            raise SandboxError("output", f"the run's {name} is larger than {limit >> 20} MiB")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise SandboxError("output", f"the run's {name} is larger than {limit >> 20} MiB")
    return data


def _environment(work: Path) -> dict[str, str]:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(work / "home"), "TMPDIR": str(work / "tmp"),
           "LANG": "C.UTF-8", "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(work / "home" / "mpl"),
           "NUMBA_CACHE_DIR": str(work / "tmp" / "numba"), "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONHASHSEED": "random"}
    return {**env, **{name: "1" for name in _THREADS}}


def _command(iso: Isolation, args: list[str], work: Path, limits: Limits, options: Options) -> list[str]:
    python = [options.python, *options.flags, *args]
    rlimits = ["prlimit", f"--as={limits.memory_bytes}", f"--cpu={limits.cpu_seconds}:{limits.cpu_seconds + 1}",
               f"--fsize={limits.file_bytes}", f"--nofile={limits.open_files}",
               f"--nproc={limits.processes}", "--core=0", "--"]
    drop = ["setpriv", "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all"]
    if iso.as_nobody:
        drop[1:1] = [f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_GID}", "--clear-groups"]
    inner = [*drop, "--", *rlimits, *python]
    if not iso.namespaces:
        return inner
    unshare = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--ipc", "--mount", "--mount-proc"]
    if options.network:  # an environment build fetches wheels; nothing else gets a network
        unshare.remove("--net")
    if not iso.as_nobody:
        unshare.insert(1, "--map-root-user")
    # sh stays PID 1 of the namespace (init ignores signals it has no handler for, so the run must
    # not be init: the CPU limit's SIGXCPU would be lost) and exits with the run's status
    return [*unshare, "sh", "-ec", _mount_script(work, iso.as_nobody, options) + shlex.join(inner)]


def _mount_script(work: Path, expose: bool, options: Options) -> str:
    """Shell run as (namespace) root before the drop: bind the run's mounts into ``work``
    (first, while their sources are still visible), when the child will run as nobody expose
    the interpreter if it sits in a folder closed to others, give it a fresh temporary
    folder, and (last) hide the data folder and the folders in ``options.hide``."""
    lines = []
    for mount in options.mounts:
        source, target = shlex.quote(str(mount.source)), shlex.quote(str(work / mount.target))
        lines.append(f"mkdir -p {target}" if mount.source.is_dir() else f"touch {target}")
        lines.append(f"mount --bind {source} {target}")
        if not mount.writable:
            lines.append(f"mount -o remount,bind,ro {target}")
    staged = shlex.quote(str(work / "tmp" / "staged"))
    for closed, needed in (_closed_ancestors() if expose else {}).items():
        for i, path in enumerate(needed):
            lines += [f"mkdir -p {staged}/{i}", f"mount --bind {shlex.quote(path)} {staged}/{i}"]
        lines.append(f"mount -t tmpfs -o size=16k,mode=0755 gridmart-shadow {shlex.quote(closed)}")
        for i, path in enumerate(needed):
            lines += [f"mkdir -p {shlex.quote(path)}", f"mount --bind {staged}/{i} {shlex.quote(path)}",
                      f"umount {staged}/{i}"]
    # the temporary folder (other runs' work folders: other subscribers' data) is replaced by an
    # empty tmpfs holding only this run's work folder: built aside, then moved over it
    # (a project or interpreter that lives there too, e.g. a checkout under /tmp, is bound back in)
    work = work.resolve()
    parent, fresh = work.parent, work / "tmp" / "fresh"
    if parent != Path("/") and not any(Path(p).is_relative_to(parent) for ps in _closed_ancestors().values()
                                       for p in ps):
        q = lambda path: shlex.quote(str(path))  # noqa: E731
        lines += [f"mkdir {q(fresh)}", f"mount -t tmpfs -o size=64m,mode=1777 gridmart-tmp {q(fresh)}",
                  f"mkdir -m 0711 {q(fresh / work.name)}", f"mount --rbind {q(work)} {q(fresh / work.name)}"]
        for path in (p for p in map(Path, _needed_paths()) if p.is_relative_to(parent)):
            inside = fresh / path.relative_to(parent)
            lines += [f"mkdir -p {q(inside)}", f"mount --bind {q(path)} {q(inside)}"]
        lines += [f"mount --move {q(fresh)} {q(parent)}"]
    # last: the folders bound back in above (plain binds) would otherwise bring back a data
    # folder inside them, e.g. the default GRIDMART_HOME in a checkout under /tmp; a folder the
    # steps above left out of view no longer exists here and needs no cover
    hide = [p for p in (ledger_settings().home.resolve(), *(p.resolve() for p in options.hide))
            if p.is_dir() and not work.is_relative_to(p)]
    for hidden in map(shlex.quote, map(str, _outermost(hide))):
        lines.append(f"if [ -d {hidden} ]; then mount -t tmpfs -o size=16k,mode=0500 gridmart-hidden {hidden}; fi")
    lines.append(f"cd {shlex.quote(str(work / options.cwd))}")
    return "".join(f"{line}; " for line in lines)


def _outermost(paths: list[Path]) -> list[Path]:
    """`paths` without those inside another one: hiding a folder hides what is in it, and a
    mount point inside a hidden folder no longer exists (a compute node's home under the data
    folder, as `gridmart up` places it)."""
    return [p for p in paths if not any(p != q and p.is_relative_to(q) for q in paths)]


@lru_cache
def _needed_paths() -> list[str]:
    """What the child must read, outermost folders only: the interpreter, the venv, the project."""
    paths = {Path(p).resolve() for p in (sys.base_prefix, sys.prefix, Path(__file__).parents[2],
                                         Path(sys.executable).resolve().parent)}
    return sorted(str(p) for p in paths if not any(p != q and p.is_relative_to(q) for q in paths))


@lru_cache
def _closed_ancestors() -> dict[str, list[str]]:
    """Folders that others cannot traverse (mode without o+x) on the way to what the child
    must read: the interpreter, the venv and the project."""
    out: dict[str, list[str]] = {}
    for path in _needed_paths():
        for ancestor in reversed(Path(path).parents):
            if ancestor != Path("/") and not os.stat(ancestor).st_mode & stat.S_IXOTH:
                out.setdefault(str(ancestor), []).append(path)
                break
    return out


def _chown_tree(work: Path) -> None:
    for root, dirs, files in os.walk(work):
        for name in (*(os.path.join(root, n) for n in dirs + files),):
            os.lchown(name, SANDBOX_UID, SANDBOX_GID)


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the thread that started it ends, so a node
    killed with -9 leaves no run behind (unshare --kill-child and the PID namespace take the rest)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
