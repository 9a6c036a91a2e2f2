"""Campaign orchestration: lock, resume checks, stage loop, atomic publication.

Design (also in the README, "Resume and durability"):

1. Rank 0 takes an exclusive lock ``<output>.lock``; a second run on the same output is refused.
2. The job's fingerprint is compared with ``<output>.journal/manifest.json`` (and the output's
   root attributes); a changed job is refused unless ``--restart``, which moves the old output
   and journals aside (``*.replaced-<time>``) instead of deleting them.
3. The run writes ``<output>.partial`` (a copy of the existing output, so stages run earlier
   with ``--stages`` are kept).  For each stage: rank 0 prepares the plan and broadcasts it;
   tasks already in the journals are written back, pending ones are scheduled; each finished
   task goes to the rank's journal (fsync) and then into its HDF5 rows.
4. Finally rank 0 renames ``<output>.partial`` to ``<output>`` atomically.  A kill at any
   moment leaves the previous output intact and the journals hold every finished task;
   rerunning the same command recomputes only what is missing.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import errno
import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np

from xasmpi import __version__, stages as registry
from xasmpi.config import Job
from xasmpi.errors import CampaignError, XasmpiError
from xasmpi.parallel.comm import Comm, as_comm, mpi_versions
from xasmpi.parallel.driver import Progress, run_tasks
from xasmpi.parallel.tasks import FAILED, OK
from xasmpi.store import h5 as store
from xasmpi.store.journal import JournalWriter, journal_dir, read_journals
from xasmpi.store.results import LAYOUT_VERSION

log = logging.getLogger("xasmpi")
#: finished rows a rank keeps before writing them to the HDF5 file (the journal already has them)
FLUSH_ROWS = 2000


def _journalled_stages(output: Path) -> set[str]:
    """Stages with at least one journalled task record (results that a changed job must not reuse)."""
    from xasmpi.store.journal import has_records

    d = journal_dir(output)
    return {p.name.split(".", 1)[0] for p in d.glob("*.jnl") if has_records(p)} if d.is_dir() else set()


def _output_state(output: Path) -> dict:
    """Root attributes of the existing output that say which stage was made by which job
    (``{}`` when absent or unreadable; an unreadable output is rebuilt from the journals)."""
    if not output.is_file():
        return {}
    try:
        return store.read_root_attrs(output)
    except OSError:
        return {}


def _check_inputs(job: Job) -> None:
    """Every input file of the job exists and the spectra read cleanly (before anything is moved)."""
    from xasmpi.stages.reduce import read_spec

    for s in job.spectra:
        read_spec(s)
    for p in job.paths:
        if p.structure and (Path(job.resolve(p.structure)).suffix or "/" in p.structure) \
                and not Path(job.resolve(p.structure)).is_file():
            raise CampaignError(f"{job.source}: paths '{p.name}': structure file {p.structure} not found")
    if job.xanes is not None:
        for c in job.xanes.candidates:
            if c.file and not Path(c.file).is_file():
                raise CampaignError(f"{job.source}: xanes candidate '{c.name}': file {c.file} not found")


def _check_resume(job: Job, output: Path, restart: bool, stages: tuple[str, ...]) -> None:
    """Rank 0: refuse to reuse or keep task results that a different job made, unless ``restart``.

    Each stage's fingerprint (the keys that change its results) is kept in
    ``<output>.journal/manifest.json`` and in the output's root attributes.  Only stages
    that have results count: journalled tasks, or a stage recorded as done in the output (a run
    that died before a stage's first task leaves nothing to protect).  A task stage with
    results of another job is refused when it is run (use ``--restart``) and also when it is
    left out of ``--stages`` (the file would otherwise describe old results with the new job).
    With ``restart`` the inputs are checked first; then the changed stages' journals are moved
    aside and the old output is kept as ``<output>.replaced-<time>``; nothing is deleted.
    """
    jdir = journal_dir(output)
    manifest = jdir / "manifest.json"
    old: dict = {}
    if manifest.is_file():
        try:
            old = json.loads(manifest.read_text()).get("stages", {})
        except (ValueError, AttributeError) as exc:
            raise CampaignError(f"{manifest}: not valid JSON ({exc}); it was damaged outside xasmpi: remove it "
                                "(the output's attributes and the journals are enough to resume)") from None
    attrs = _output_state(output)
    done_in_output = set(json.loads(attrs.get("stages_done", "[]")))
    for k, v in attrs.items():
        if k.startswith("fingerprint_"):
            old.setdefault(k[len("fingerprint_"):], v)
    with_results = _journalled_stages(output) | done_in_output
    changed = [s.name for s in registry.STAGES
               if s.has_tasks and s.name in with_results and s.name in old and old[s.name] != job.fingerprint(s.name)]
    left_out = [s for s in changed if s not in stages]
    if left_out and not restart:
        raise CampaignError(f"{output}: the job changed settings that stage(s) {', '.join(left_out)} depend on, "
                            f"but --stages leaves {'it' if len(left_out) == 1 else 'them'} out: the file would "
                            "describe the old results with the new settings; run those stages too (with --restart) "
                            "or choose another output")
    if changed and not restart:
        raise CampaignError(f"{output}: existing results of stage(s) {', '.join(changed)} were made by a "
                            "different job (changed settings); use --restart to recompute them (the old "
                            "results are kept as *.replaced-<time>) or choose another output")
    _check_inputs(job)
    if left_out:
        raise CampaignError(f"{output}: --restart with stage(s) {', '.join(left_out)} changed but left out of "
                            "--stages: include them")
    if changed:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        if output.is_file():
            dest = output.with_name(output.name + f".replaced-{stamp}")
            shutil.copyfile(output, dest)
            log.info("--restart: kept a copy of the previous results as %s", dest)
        for s in changed:
            moved = jdir.with_name(jdir.name + f".replaced-{stamp}")
            for fpath in jdir.glob(f"{s}.*.jnl"):
                moved.mkdir(exist_ok=True)
                os.replace(fpath, moved / fpath.name)
            log.info("--restart: stage %s starts over (its journals moved to %s)", s, moved)
    jdir.mkdir(parents=True, exist_ok=True)
    # record only stages with results (kept) and the stages of this run
    merged = {**{s: v for s, v in old.items() if s in with_results and s not in changed},
              **{s: job.fingerprint(s) for s in stages}}
    tmp = manifest.with_suffix(".tmp")
    tmp.write_text(json.dumps({"stages": merged, "xasmpi": __version__, "job": job.source}))
    os.replace(tmp, manifest)


def _prune(f, job: Job) -> None:
    """Drop groups of spectra and XANES candidates that are no longer in the job."""
    names = {s.name for s in job.spectra}
    for n in list(f.get("exafs", {})):
        if n not in names:
            del f["exafs"][n]
            log.info("removed /exafs/%s: no longer a spectrum of the job", n)
    cands = {c.name for c in job.xanes.candidates} if job.xanes is not None else set()
    for n in list(f.get("xanes", {})):
        if n not in cands | {"measured", "comparison"}:
            del f["xanes"][n]
            log.info("removed /xanes/%s: no longer a candidate of the job", n)


def _root_attrs(f, job: Job, size: int) -> None:
    f.attrs["xasmpi_version"] = __version__
    f.attrs["layout_version"] = LAYOUT_VERSION
    f.attrs.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    f.attrs["job_toml"] = job.text
    f.attrs["job_file"] = job.source
    f.attrs["job_overrides"] = json.dumps(list(job.overrides))
    f.attrs["job_resolved"] = json.dumps(job.resolved(), default=str)
    f.attrs["job_fingerprint"] = job.fingerprint()
    f.attrs["seed"] = job.job.seed
    f.attrs["n_ranks"] = size
    f.attrs["simulated"] = bool(job.job.simulated)
    vers = versions(job)
    f.attrs["versions"] = json.dumps(vers)
    for k, v in vers.items():
        f.attrs[f"version_{k}"] = v


def versions(job: Job | None = None) -> dict[str, str]:
    """Versions of what the results depend on: libraries, FEFF (larch's bundled feff6l/feff8l),
    FDMNES (binary path and sha256 prefix, when the job has a XANES section)."""
    import importlib
    import sys

    out = {"xasmpi": __version__, "python": sys.version.split()[0]}
    mpi = mpi_versions()
    for name in ("numpy", "scipy", "h5py", *mpi, "larch", "ase", "xraydb"):
        if name in mpi:
            out[name] = mpi[name]
            continue
        try:
            out[name] = store.hdf5_info()["h5py"] if name == "h5py" else str(importlib.import_module(name).__version__)
        except Exception:  # noqa: BLE001 - recorded as missing, never fatal
            out[name] = "missing"
    try:
        out["hdf5"] = store.hdf5_info()["hdf5"]
    except Exception:  # noqa: BLE001
        pass
    out["feff"] = f"feff6l/feff8l bundled with larch {out['larch']}"
    if job is not None and job.xanes is not None:
        try:
            from xasmpi.config import file_digest
            from xasmpi.xanes.fdmnes import find_fdmnes

            path, how = find_fdmnes(job.xanes.fdmnes)
            out["fdmnes"] = f"{path} (sha256 {file_digest(str(path))}, {how})"
        except XasmpiError as exc:
            out["fdmnes"] = f"not found ({exc})"
    return out


def run_campaign(job: Job, *, stages: tuple[str, ...] | None = None, restart: bool = False,
                 retry_failed: bool = False, comm: Comm | None = None) -> dict:
    """Run the job's stages over ``comm`` (every rank calls this; default
    :func:`xasmpi.parallel.comm.world`). Returns the summary (rank 0)."""
    comm = as_comm(comm)
    rank, size = comm.rank, comm.size
    stages = tuple(stages or job.configured_stages)
    for s in stages:
        registry.get(s)  # CampaignError for an unknown stage
    if not stages:
        raise CampaignError(f"{job.source}: nothing to run (no stage sections in the job file)")
    output = Path(job.job.output)
    partial = output.with_name(output.name + ".partial")
    parallel = comm.mpi is not None and store.mpio_available()
    lock = store.OutputLock(output)
    err = None
    if rank == 0:
        try:
            lock.acquire()
            _check_resume(job, output, restart, stages)
            _fresh_partial(output, partial)
            with store.open_file(partial) as f:
                _root_attrs(f, job, size)
                # until the final rename this file is work in progress, whatever it was copied from
                f.attrs["complete"] = False
                f.attrs["incomplete_reason"] = "run in progress or interrupted (a .partial file)"
                _prune(f, job)
        except XasmpiError as exc:
            err = exc
        except OSError as exc:
            err = CampaignError(f"{output}: cannot prepare the output ({_oserror(exc)})")
    comm.bcast_or_raise(None, err)
    if rank == 0:
        log.info("xasmpi %s: job %s, %d rank(s), stages %s, output %s", __version__, job.source, size,
                 ",".join(stages), output)
        if not parallel and comm.mpi is not None:
            log.info("h5py has no MPI support (or XASMPI_NO_MPIO is set): results are gathered on "
                     "rank 0 and written there")
    t0 = time.monotonic()
    cache: dict = {}
    summaries = []
    try:
        for name in stages:
            summaries.append(_run_stage(job, name, comm, partial, parallel, retry_failed, cache))
        if rank == 0:
            _finish(job, stages, size, partial, output, summaries)
    except Exception as exc:  # disk full, quota, I/O error: one line, the journals keep every finished task
        if not is_write_error(exc):
            raise
        raise _write_failure(partial, output, exc) from None
    finally:
        if rank == 0:
            lock.release()
    peak = comm.gather(_peak_rss_mb())
    wall = time.monotonic() - t0
    n_tasks = sum(s["tasks"] for s in summaries)
    n_failed = sum(s["failed"] for s in summaries)
    summary = {"output": str(output), "wall_s": wall, "tasks": n_tasks, "failed": n_failed,
               "tasks_per_s": n_tasks / wall if wall > 0 else float("nan"), "stages": summaries}
    if rank == 0:
        summary["peak_rss_mb"] = peak
        log.info("peak memory per rank: %s MB", ", ".join(f"{m:.0f}" for m in peak))
        log.info("done in %.1f s: %d tasks computed (%.3g tasks/s), %d failed in total; results in %s",
                 wall, n_tasks, summary["tasks_per_s"], n_failed, output)
    return summary


_WRITE_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO, errno.EROFS)
_WRITE_WORDS = ("write failed", "No space left", "File too large", "Disk quota", "set_size", "Read-only file")


def is_write_error(exc: BaseException) -> bool:
    """True for a failed write of the file system (full disk, quota, size limit), including
    h5py's ValueError/RuntimeError wrappers of HDF5 write failures."""
    if isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS:
        return True
    return isinstance(exc, (OSError, ValueError, RuntimeError)) and any(w in str(exc) for w in _WRITE_WORDS)


def _write_failure(partial: Path, output: Path, exc: BaseException) -> CampaignError:
    why = _oserror(exc) if isinstance(exc, OSError) else " ".join(str(exc).split())
    err = CampaignError(f"{partial}: cannot write the results ({why}); the journals in {journal_dir(output)} "
                        "keep every finished task: free space (or raise the limit) and rerun")
    err.hard_exit = True  # HDF5 may hold a file it cannot flush: exit without its cleanup
    return err


def _oserror(exc: OSError) -> str:
    return " ".join(str(exc.strerror or exc).split()) + (f": {exc.filename}" if exc.filename else "")


def _fresh_partial(output: Path, partial: Path) -> None:
    """Start ``<output>.partial`` as a fresh copy of the output (no space left by rewritten
    datasets).  An output that cannot be read is set aside (``.corrupt-<time>``): every task
    result is in the journals and task-less stages are recomputed when run."""
    if partial.exists():
        partial.unlink()
    if not output.is_file():
        return
    try:
        store.copy_file(output, partial)
    except OSError as exc:
        if partial.exists():
            partial.unlink()
        if getattr(exc, "errno", None) in (28, 27, 122):  # ENOSPC, EFBIG, EDQUOT: not the output's fault
            raise
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        dest = output.with_name(output.name + f".corrupt-{stamp}")
        os.replace(output, dest)
        log.warning("%s cannot be read (%s): set aside as %s; the results are rebuilt from the journals "
                    "(stages without tasks are recomputed when you run them)", output, exc, dest)


def _finish(job: Job, stages: tuple[str, ...], size: int, partial: Path, output: Path,
            summaries: list[dict]) -> None:
    """Rank 0: record what each stage was made with, mark stale stages, repack, publish.

    ``stage_runs[stage]["ranks"]`` lists the rank counts of the runs that computed the
    stage's results (a 2-rank run resumed serially: ``[2, 1]``).
    """
    with store.open_file(partial) as f:
        f.attrs["n_ranks"] = size
        done = set(json.loads(f.attrs.get("stages_done", "[]"))) | set(stages)
        f.attrs["stages_done"] = json.dumps(sorted(done, key=registry.NAMES.index))
        runs = json.loads(f.attrs.get("stage_runs", "{}"))
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        computed = {sm.get("stage"): sm for sm in summaries}
        for st in stages:
            prev = runs.get(st, {})
            ranks = [r for r in (prev.get("ranks") or []) if isinstance(r, int)] \
                if prev.get("fingerprint") == job.fingerprint(st) else []
            sm = computed.get(st, {})
            if "n_tasks" not in sm or not ranks or not sm.get("resumed"):
                ranks = [size]  # a task-less stage, or all of its tasks computed by this run
            elif sm.get("tasks", 0) > 0 and size not in ranks:
                ranks = ranks + [size]  # resumed: earlier runs and this one computed its tasks
            f.attrs[f"fingerprint_{st}"] = job.fingerprint(st)
            runs[st] = {"fingerprint": job.fingerprint(st), "job_fingerprint": job.fingerprint(),
                        "seed": job.job.seed, "overrides": list(job.overrides), "ranks": ranks, "finished": now}
        f.attrs["stage_runs"] = json.dumps(runs)
        f.attrs["stage_ranks"] = json.dumps({st: r["ranks"] for st, r in runs.items()})
        stale = [st for st in sorted(done, key=registry.NAMES.index)
                 if _s(f.attrs.get(f"fingerprint_{st}", "")) != job.fingerprint(st)]
        f.attrs["stale_stages"] = json.dumps(stale)
        if stale:
            log.warning("stage(s) %s hold results of an earlier job (settings changed since): rerun them "
                        "with --stages to bring the file up to date", ", ".join(stale))
        f.attrs["complete"] = True
        if "incomplete_reason" in f.attrs:
            del f.attrs["incomplete_reason"]
    packed = partial.with_name(partial.name + ".pack")
    store.copy_file(partial, packed)
    os.replace(packed, partial)
    os.replace(partial, output)


def _s(x) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def _unexpected(stage: str, when: str, exc: Exception) -> CampaignError:
    """An unexpected error on rank 0, as a one-line error every rank raises (traceback in --debug)."""
    import traceback

    log.debug("stage %s failed while %s:\n%s", stage, when, traceback.format_exc())
    return CampaignError(f"stage {stage}: failed while {when}: {type(exc).__name__}: {exc} "
                         "(rerun with --debug for the traceback)")


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def _run_stage(job: Job, name: str, comm: Comm, partial: Path, parallel: bool, retry_failed: bool,
               cache: dict) -> dict:
    rank, size = comm.rank, comm.size
    stage = registry.get(name)
    plan, err, done = None, None, {}
    if rank == 0:
        log.info("stage %s: preparing", name)
        try:
            plan = stage.plan(job, cache)
            if plan.tasks:
                plan = dataclasses.replace(plan, run_batch=stage.run)
            done = read_journals(job.job.output, name)
            tasks = {t.index for t in plan.tasks}
            done = {i: r for i, r in done.items() if i in tasks}
            if retry_failed:
                done = {i: r for i, r in done.items() if r.status != FAILED}
        except XasmpiError as exc:
            err = exc
        except Exception as exc:  # noqa: BLE001 - reported on every rank, traceback with --debug
            err = _unexpected(name, "preparing", exc)
    extra = plan.extra if plan is not None else {}
    shared = dataclasses.replace(plan, extra={}) if plan is not None else None
    shared, done_idx = comm.bcast_or_raise((shared, np.array(sorted(done), dtype=np.int64)), err)
    plan = dataclasses.replace(shared, extra=extra) if rank == 0 else shared
    done_set = set(done_idx.tolist())
    pending = [t for t in plan.tasks if t.index not in done_set]
    by_index = {t.index: t for t in plan.tasks}
    progress = None
    if rank == 0:
        n_failed_before = sum(1 for r in done.values() if r.status == FAILED)
        if plan.tasks:
            log.info("stage %s: %d tasks, %d already done (%d failed), %d to run on %d rank(s) (%s)",
                     name, len(plan.tasks), len(done), n_failed_before, len(pending), size, plan.schedule)
        progress = Progress(name, len(pending), interval=job.run.progress_interval, already=len(done))

    f = None
    try:
        if plan.tasks:
            if parallel:
                f = store.open_file(partial, comm.mpi)
                store.create_datasets(f, plan)
                if rank == 0 and done:
                    store.write_results(f, plan, by_index, list(done.values()))
            elif rank == 0:
                f = store.open_file(partial)
                store.create_datasets(f, plan)
                if done:
                    store.write_results(f, plan, by_index, list(done.values()))
        journal = JournalWriter(job.job.output, name, rank, fsync=job.run.journal_fsync) if pending else None
        local: list = []

        def on_results(results):
            for r in results:
                r.rank = rank
            journal.append(results)  # durable now; the HDF5 rows are written in batches
            local.extend(results)
            if parallel and len(local) >= FLUSH_ROWS:
                store.write_results(f, plan, by_index, local)
                local.clear()

        try:
            if pending:
                run_tasks(plan, pending, comm=comm, on_results=on_results, progress=progress)
                if progress is not None:
                    progress.line()
        finally:
            if journal:
                journal.close()
        if plan.tasks:
            if parallel:
                store.write_results(f, plan, by_index, local)
            else:
                gathered = comm.gather(local)
                if rank == 0:
                    store.write_results(f, plan, by_index, [r for part in gathered for r in part])
            comm.barrier()  # ranks that finish early wait here without spinning on a core
            if f is not None:
                f.close()
                f = None
    except BaseException as exc:
        # after a failed write HDF5 1.10's mpio driver crashes when the file is closed: leave it
        # open; the CLI then exits at once (CampaignError.hard_exit) without HDF5's cleanup
        if f is not None and not (parallel and is_write_error(exc)):
            try:
                f.close()
            except Exception:  # noqa: BLE001 - the first error is the one reported
                pass
        raise
    stage_summary = progress.summary() if progress else {}
    err = None
    if rank == 0:
        try:
            results = read_journals(job.job.output, name) if plan.tasks else {}
            with store.open_file(partial) as fh:
                if plan.tasks:
                    n_failed = store.write_failures(fh, name, plan, results)
                    stage_summary["failed_total"] = n_failed
                    stage_summary["ok_total"] = sum(1 for r in results.values() if r.status == OK)
                    stage_summary["n_tasks"] = len(plan.tasks)
                    # timing of this run of the stage (resumed runs count only what they computed)
                    fh[f"/tasks/{name}"].attrs.update({
                        "last_run_wall_s": stage_summary["wall_s"], "last_run_tasks": stage_summary["tasks"],
                        "last_run_tasks_per_s": stage_summary["tasks_per_s"], "last_run_ranks": size})
                    store.add_checksums(fh, plan)
                stage.finalize(job, plan, fh, results)
            if plan.tasks:
                log.info("stage %s: %d/%d tasks ok, %d failed%s", name,
                         sum(1 for r in results.values() if r.status == OK), len(plan.tasks),
                         stage_summary["failed_total"],
                         " (rerun with --retry-failed to retry them)" if stage_summary["failed_total"] else "")
        except XasmpiError as exc:
            err = exc
        except Exception as exc:  # noqa: BLE001
            err = _write_failure(partial, Path(job.job.output), exc) if is_write_error(exc) \
                else _unexpected(name, "finishing", exc)
    comm.bcast_or_raise(None, err)
    return stage_summary or {"stage": name, "tasks": 0, "failed": 0}
