"""Where points run: in this process (`jobs=1`), a local process pool, or a Dask distributed
cluster (`scheduler="tcp://host:8786"`). Outcomes are yielded as points finish, in any order."""

from __future__ import annotations

import os
from typing import Any, Iterable, Iterator

from models.errors import ConfigError

from .points import one_line, run_point

CONNECT_TIMEOUT_S = 10


def default_jobs() -> int:
    """All the cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _lost(task: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    return {"config_hash": task["config_hash"], "status": "failed", "wall_s": 0.0, "result": None,
            "error": f"the point's worker was lost ({one_line(exc)})"}


def execute(tasks: list[dict[str, Any]], jobs: int | None = None, client=None) -> Iterator[dict[str, Any]]:
    """Run `tasks` on Dask `client` (see `connect`) or on `jobs` local processes."""
    if client is not None:
        yield from _dask(tasks, client)
        return
    jobs = min(jobs or default_jobs(), len(tasks))
    if jobs <= 1:
        yield from map(run_point, tasks)
        return
    yield from _pool(tasks, jobs)


def _pool(tasks: list[dict[str, Any]], jobs: int) -> Iterator[dict[str, Any]]:
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from difftlm.api import _die_with_parent

    # workers die with this process: a kill -9 of the sweep leaves no orphans running points
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=_die_with_parent, initargs=(os.getpid(),))
    try:
        futures = {pool.submit(run_point, t): t for t in tasks}
        for fut in as_completed(futures):
            task = futures.pop(fut)
            try:
                yield fut.result()
            except Exception as exc:  # BrokenProcessPool: a worker died (out of memory, killed)
                yield _lost(task, exc)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def connect(scheduler: str):
    """A Dask client of the scheduler at `scheduler`; ConfigError when none answers."""
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError("--scheduler needs dask.distributed: pip install 'difftlm[dask]'") from None
    try:
        return Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(f"--scheduler {scheduler}: cannot connect ({one_line(exc)}); start one with "
                          f"`dask scheduler` and workers with `dask worker {scheduler}`") from None


def _dask(tasks: list[dict[str, Any]], client) -> Iterable[dict[str, Any]]:
    """Points as Dask tasks; the scheduler reruns a task whose worker died elsewhere."""
    from distributed import as_completed

    futures = {client.submit(run_point, t, key=f"difftlm-point-{t['config_hash']}", pure=False): t
               for t in tasks}
    for fut in as_completed(futures, loop=client.loop):
        task = futures.pop(fut)
        try:
            yield fut.result()
        except Exception as exc:  # KilledWorker: the task's workers died too often
            yield _lost(task, exc)
        fut.release()
