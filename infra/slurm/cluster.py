"""A Dask cluster of SLURM jobs for Winnow's feature shards (dask-jobqueue), one GPU per worker job.

    python infra/slurm/cluster.py --jobs 8 --partition gpu          # starts the scheduler, submits 8 jobs
    python infra/slurm/cluster.py --print-job-script                # what would be submitted (no sbatch)

It prints the scheduler address; run flows with DASK_SCHEDULER_ADDRESS set to it (the process must keep
running while they do). Workers run in the same Python environment (a shared install, or the image of
infra/docker/Dockerfile.gpu through Apptainer via --python).
"""
from __future__ import annotations

import argparse
import time


def make_cluster(partition: str, walltime: str, memory: str, cores: int, python: str | None, account: str | None,
                 host: str) -> "object":
    from dask_jobqueue import SLURMCluster

    # One single-threaded worker per job and one GPU per job: SLURM sets CUDA_VISIBLE_DEVICES to the GPU it
    # granted, so a plain Dask worker sees exactly one device (what dask-cuda arranges on a multi-GPU node).
    return SLURMCluster(
        queue=partition, account=account, cores=1, processes=1, job_cpu=cores, memory=memory, walltime=walltime,
        job_extra_directives=["--gres=gpu:1"],
        job_script_prologue=["export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1",
                             "unset MALLOC_TRIM_THRESHOLD_"],
        python=python, scheduler_options={"host": host, "dashboard_address": ":0"}, log_directory="slurm-logs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=4, help="worker jobs (one GPU each)")
    ap.add_argument("--partition", default="gpu")
    ap.add_argument("--account", default=None)
    ap.add_argument("--walltime", default="08:00:00")
    ap.add_argument("--memory", default="48GB")
    ap.add_argument("--cores", type=int, default=8)
    ap.add_argument("--python", default=None, help="worker interpreter, e.g. 'apptainer exec --nv winnow.sif python'")
    ap.add_argument("--host", default=None, help="scheduler bind address (default: this node's address)")
    ap.add_argument("--print-job-script", action="store_true")
    args = ap.parse_args()
    cluster = make_cluster(args.partition, args.walltime, args.memory, args.cores, args.python, args.account,
                           args.host or "")
    if args.print_job_script:
        print(cluster.job_script())
        cluster.close()
        return
    cluster.scale(jobs=args.jobs)
    print(f"DASK_SCHEDULER_ADDRESS={cluster.scheduler_address}", flush=True)
    try:
        while True:
            time.sleep(60)
    except KeyboardInterrupt:
        cluster.close()


if __name__ == "__main__":
    main()
