"""The job store (SQLite, ``<home>/jobs.db``) and the workers that run jobs in the sandbox.

Each job has a folder ``<home>/jobs/<id>/`` (bundle.tar, input, log, result) that no run
can see; a run gets a fresh work folder with only its bundle, environment, input and
dataset bound in read-only. States: queued → building → running → done | failed |
cancelled (docs/compute.md). The store is committed before a state is reported, and a
restart requeues interrupted jobs once (``recover``).
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, create_engine, select

from ledger_node.content.importer import compute_cid

from . import bundle, datasets, envs, policy, sandbox
from .settings import ComputeSettings

QUEUED, BUILDING, RUNNING, DONE, FAILED, CANCELLED = "queued", "building", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
RESTARTED_TWICE = "the compute node restarted during this job twice"
LOG_LIMIT = 1 << 20
#: where a crashed job's error goes on from the node's reason to the run's own last line
LAST_OUTPUT = "\nits last output: "
WORKDIRS = "workdirs"  # in a job's folder while it runs: the sandbox work folders it uses
_PROGRESS = re.compile(r"^progress:\s*([0-9]*\.?[0-9]+)\s*(%?)\s*$")


class Job(SQLModel, table=True):
    id: str = Field(primary_key=True)
    ref: str = Field(index=True, unique=True)
    state: str = QUEUED
    progress: float = 0.0
    error: str | None = None
    env_hash: str | None = None
    output: str | None = None  # JSON {"cid","sha256","size","media_type"}
    spec: str  # JSON, as accepted
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    attempts: int = 0

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "ref": self.ref, "state": self.state, "progress": self.progress,
                "error": self.error, "env_hash": self.env_hash,
                "output": json.loads(self.output) if self.output else None, "created_at": self.created_at,
                "started_at": self.started_at, "finished_at": self.finished_at, "attempts": self.attempts}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_progress(line: str) -> float | None:
    """``progress: 0.42`` or ``progress: 42%`` → 0.42 (clamped to 0..1); None for other lines."""
    match = _PROGRESS.match(line.strip())
    if not match:
        return None
    value = float(match.group(1)) / (100 if match.group(2) else 1)
    return min(1.0, max(0.0, value))


class Store:
    """Jobs in SQLite; every change is committed before it returns."""

    def __init__(self, home: Path):
        self.home = home
        self.engine = create_engine(f"sqlite:///{home / 'jobs.db'}", connect_args={"check_same_thread": False})
        SQLModel.metadata.create_all(self.engine)

    def folder(self, job_id: str) -> Path:
        return self.home / "jobs" / job_id

    def get(self, job_id: str) -> Job | None:
        with Session(self.engine) as s:
            return s.get(Job, job_id)

    def by_ref(self, ref: str) -> Job | None:
        with Session(self.engine) as s:
            return s.exec(select(Job).where(Job.ref == ref)).first()

    def create(self, spec: dict[str, Any], staged: Path) -> tuple[Job, bool]:
        """A queued job whose files are the staged folder (moved into place); (job, created)."""
        job = Job(id=uuid.uuid4().hex, ref=spec["ref"], spec=json.dumps(spec), created_at=now())
        shutil.move(str(staged), self.folder(job.id))
        try:
            with Session(self.engine) as s:
                s.add(job)
                s.commit()
                s.refresh(job)
            return job, True
        except IntegrityError:  # the same ref, submitted concurrently
            shutil.rmtree(self.folder(job.id), ignore_errors=True)
            return self.by_ref(spec["ref"]), False

    def update(self, job_id: str, **fields: Any) -> Job:
        with Session(self.engine) as s:
            job = s.get(Job, job_id)
            for name, value in fields.items():
                setattr(job, name, value)
            s.add(job)
            s.commit()
            s.refresh(job)
            return job

    def count(self, state: str) -> int:
        with Session(self.engine) as s:
            return len(s.exec(select(Job.id).where(Job.state == state)).all())

    def next_queued(self, taken: set[str]) -> Job | None:
        with Session(self.engine) as s:
            for job in s.exec(select(Job).where(Job.state == QUEUED).order_by(Job.created_at)):
                if job.id not in taken:
                    return job
        return None

    def recover(self) -> None:
        """After a restart: a job that was building or running runs once more; the second
        interruption fails it. The work folders of interrupted runs are removed."""
        for listed in (self.home / "jobs").glob(f"*/{WORKDIRS}"):
            for line in listed.read_text().split():
                if Path(line).parent == Path(tempfile.gettempdir()) and Path(line).name.startswith("gridmart-run-"):
                    sandbox.remove_workdir(Path(line))
            listed.unlink()
        with Session(self.engine) as s:
            for job in s.exec(select(Job).where(Job.state.in_((BUILDING, RUNNING)))):
                if job.attempts >= 2:
                    job.state, job.error, job.finished_at = FAILED, RESTARTED_TWICE, now()
                else:
                    job.state = QUEUED
                s.add(job)
            s.commit()


class Workers:
    """``settings.workers`` threads taking queued jobs oldest first."""

    def __init__(self, settings: ComputeSettings, store: Store):
        self.settings, self.store = settings, store
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._taken: set[str] = set()
        self._handles: dict[str, sandbox.Running] = {}
        self._cancelled: set[str] = set()
        self._stopping = False
        self._threads = [threading.Thread(target=self._loop, daemon=True, name=f"compute-worker-{i}")
                         for i in range(settings.workers)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
            handles = list(self._handles.values())
        for handle in handles:
            handle.cancel()

    def notify(self) -> None:
        with self._lock:
            self._wake.notify_all()

    def cancel(self, job_id: str) -> Job:
        """Cancel a job that has not finished: a queued one at once, a taken one by killing its run."""
        with self._lock:
            job = self.store.get(job_id)
            if job.state in FINISHED:
                return job
            if job_id not in self._taken:
                return self.store.update(job_id, state=CANCELLED, finished_at=now())
            self._cancelled.add(job_id)
            handle = self._handles.get(job_id)
        if handle is not None:
            handle.cancel()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.store.get(job_id).state not in FINISHED:
            time.sleep(0.05)
        return self.store.get(job_id)

    def _loop(self) -> None:
        while True:
            with self._lock:
                job = None
                while not self._stopping and (job := self.store.next_queued(self._taken)) is None:
                    self._wake.wait(timeout=1.0)
                if self._stopping:
                    return
                self._taken.add(job.id)
                job = self.store.update(job.id, attempts=job.attempts + 1, started_at=now())
            try:
                self._run(job)
            finally:
                with self._lock:
                    self._taken.discard(job.id)
                    self._cancelled.discard(job.id)
                    self._handles.pop(job.id, None)

    def _start(self, job_id: str, args: list[str], work: Path, limits: sandbox.Limits,
               options: sandbox.Options) -> sandbox.Finished:
        with self._lock:
            if job_id in self._cancelled:
                raise sandbox.SandboxError("cancelled", "the run was cancelled")
            handle = self._handles[job_id] = sandbox.start(args, work, limits, options)
        return handle.wait()

    def _run(self, job: Job) -> None:
        spec = json.loads(job.spec)
        unpacked, work = sandbox.new_workdir(), sandbox.new_workdir()  # one folder per sandbox run
        workdirs = self.store.folder(job.id) / WORKDIRS  # so a restart after a crash removes them
        workdirs.write_text(f"{unpacked}\n{work}\n")
        try:
            manifest = self._inspect(job, unpacked)
            limits = self._limits(manifest.resources)
            env = envs.ensure(self.store.home, manifest, self._build_limits(),
                              on_start=lambda: self.store.update(job.id, state=BUILDING, env_hash=manifest.env_hash()))
            self.store.update(job.id, state=RUNNING, env_hash=manifest.env_hash())
            self._execute(job, spec, manifest, env, unpacked / "bundle", work, limits)
        except sandbox.SandboxError as exc:
            if exc.kind == "cancelled" or job.id in self._cancelled:
                self.store.update(job.id, state=CANCELLED, finished_at=now())
            else:
                self.store.update(job.id, state=FAILED, error=self._explain(job, exc), finished_at=now())
        except (bundle.BundleError, envs.BuildError, policy.PolicyError) as exc:
            state = CANCELLED if job.id in self._cancelled else FAILED
            self.store.update(job.id, state=state, error=None if state == CANCELLED else str(exc), finished_at=now())
        finally:
            sandbox.remove_workdir(unpacked)
            sandbox.remove_workdir(work)
            workdirs.unlink()

    def _inspect(self, job: Job, work: Path) -> bundle.Manifest:
        """Extract and validate the bundle in the sandbox; the manifest comes back as JSON."""
        options = sandbox.Options(mounts=(sandbox.Mount(self.store.folder(job.id) / "bundle.tar", "bundle.tar"),),
                                  hide=(self.store.home,))
        args = ["-m", "ledger_node.compute.inspect", str(work / "bundle.tar"), str(work / "bundle"), str(work / "out")]
        limits = sandbox.Limits(wall_seconds=120, cpu_seconds=120, memory_bytes=1 << 30,
                                file_bytes=bundle.MAX_BUNDLE_BYTES, processes=16)
        (work / "bundle").mkdir()  # the work folder itself stays root's; what is in it is the run's
        try:
            self._start(job.id, args, work, limits, options)
        except sandbox.SandboxError as exc:
            reason = sandbox.read_output(work, "error.txt", 8192)
            if reason:
                raise bundle.BundleError(f"the bundle was refused: {reason.decode(errors='replace')}") from None
            raise sandbox.SandboxError(exc.kind, f"unpacking the bundle failed: {exc.message}") from None
        raw = sandbox.read_output(work, "manifest.json", bundle.MAX_MANIFEST_BYTES)
        if raw is None:
            raise bundle.BundleError("the bundle was refused: unpacking it produced no manifest")
        return bundle.parse(raw)

    def _execute(self, job: Job, spec: dict, manifest: bundle.Manifest, env: Path, code: Path, work: Path,
                 limits: sandbox.Limits) -> None:
        folder = self.store.folder(job.id)
        mounts = [sandbox.Mount(code, "bundle"), sandbox.Mount(env, "env")]
        variables = {"GRIDMART_INPUT": "", "GRIDMART_DATA": "", "GRIDMART_OUTPUT": str(work / "out" / "result"),
                     "GRIDMART_SCRATCH": str(work / "scratch")}
        if (folder / "input").exists():
            mounts.append(sandbox.Mount(folder / "input", "input"))
            variables["GRIDMART_INPUT"] = str(work / "input")
        if spec.get("dataset"):
            mounts.append(sandbox.Mount(datasets.path(self.store.home, spec["dataset"]["cid"]), "data"))
            variables["GRIDMART_DATA"] = str(work / "data")
        (work / "scratch").mkdir()
        with open(folder / "log", "ab") as log:
            if job.attempts > 1:
                log.write(f"\n--- attempt {job.attempts} (the node restarted) ---\n".encode())
        options = sandbox.Options(python=str(work / "env" / "bin" / "python"), flags=("-E", "-s"),
                                  mounts=tuple(mounts), env=tuple(variables.items()), hide=(self.store.home,),
                                  cwd="bundle", log=folder / "log", log_limit=LOG_LIMIT,
                                  on_line=self._progress_reader(job.id))
        self._start(job.id, [manifest.entry_point], work, limits, options)
        data = sandbox.read_output(work, "result", limits.output_bytes)
        if data is None:
            raise sandbox.SandboxError("crash", "the entry point finished without writing GRIDMART_OUTPUT")
        rules = policy.Policy.model_validate(spec["policy"]) if spec.get("policy") else None
        policy.check(data, manifest.output.media_type, rules)
        (folder / "result").write_bytes(data)
        output = {"cid": compute_cid(data), "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "media_type": manifest.output.media_type}
        self.store.update(job.id, state=DONE, progress=1.0, output=json.dumps(output), finished_at=now())

    def _progress_reader(self, job_id: str):
        last = [0.0]

        def on_line(line: str) -> None:
            value = parse_progress(line)
            if value is not None and time.monotonic() - last[0] > 0.2:
                last[0] = time.monotonic()
                self.store.update(job_id, progress=value)
        return on_line

    def _explain(self, job: Job, exc: sandbox.SandboxError) -> str:
        """The error a job shows: the sandbox's reason on the first line and, for a crash, what
        the run printed last on the next (a marketplace may show only the first: see LAST_OUTPUT)."""
        if exc.kind != "crash":
            return exc.message
        try:
            lines = (self.store.folder(job.id) / "log").read_text(errors="replace").strip().splitlines()
        except FileNotFoundError:
            lines = []
        return exc.message + (f"{LAST_OUTPUT}{lines[-1][:300]}" if lines else "")

    def _limits(self, r: bundle.Resources) -> sandbox.Limits:
        s = self.settings
        output = min(r.output_mb, s.max_output_mb) << 20
        return sandbox.Limits(wall_seconds=min(r.wall_seconds, s.max_wall_seconds),
                              cpu_seconds=min(r.cpu_seconds, s.max_cpu_seconds),
                              memory_bytes=min(r.memory_mb, s.max_memory_mb) << 20, file_bytes=output,
                              processes=min(r.processes, s.max_processes), output_bytes=output)

    def _build_limits(self) -> sandbox.Limits:
        s = self.settings
        return sandbox.Limits(wall_seconds=s.build_wall_seconds, cpu_seconds=s.build_wall_seconds,
                              memory_bytes=4 << 30, file_bytes=2 << 30, processes=64)

