"""Background jobs of the server (ingest, distillation): run in worker threads, polled with GET /v1/jobs/{id}.

One worker per kind: two ingests queue behind each other (the KB has one writer anyway), while asks keep being
answered from the readers' snapshot. Finished jobs are kept in memory (the last ``keep`` of them).
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Job:
    """A unit of background work and what became of it."""

    id: str
    kind: str
    status: str = "queued"  # queued -> running -> done | failed
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    result: Any = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class JobManager:
    """Runs callables in per-kind worker threads and remembers their outcome.

    Example:
        >>> jobs = JobManager()
        >>> job = jobs.submit("ingest", lambda: {"added": 1})
        >>> jobs.wait(job.id, 5).status
        'done'
    """

    def __init__(self, keep: int = 200) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._lock = threading.Lock()
        self._keep = keep

    def submit(self, kind: str, work: Callable[[], Any]) -> Job:
        job = Job(id=uuid.uuid4().hex[:12], kind=kind)
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > self._keep:
                self._jobs.popitem(last=False)
            pool = self._pools.setdefault(kind, ThreadPoolExecutor(1, thread_name_prefix=f"job-{kind}"))
        pool.submit(self._run, job, work)
        return job

    def _run(self, job: Job, work: Callable[[], Any]) -> None:
        job.status, job.started = "running", time.time()
        try:
            job.result = work()
            job.status = "done"
        except Exception as exc:  # noqa: BLE001 - a job's failure is reported to the client, not raised
            job.error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            job.status = "failed"
            traceback.print_exc()
        job.finished = time.time()

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        return list(self._jobs.values())

    def wait(self, job_id: str, timeout: float) -> Job:
        """Block until the job ends or ``timeout`` seconds pass (for short ingests answered inline)."""
        deadline = time.monotonic() + timeout
        job = self._jobs[job_id]
        while job.status in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.05)
        return job

    def shutdown(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
