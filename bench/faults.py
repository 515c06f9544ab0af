"""Fault injection: SIGKILL the featurisation flow at random points, re-run it, and compare the store with a
run that was never killed.

A child process runs the real Prefect featurisation (cached shard tasks writing to LanceDB) on a tiny model.
A reference run records when each LanceDB write starts and ends; each trial kills a fresh run at a seeded
random time — half of them aimed inside a write — then re-runs it to completion and checks:
- the feature table equals the reference: same ids, bit-identical vectors, no duplicate keys (rows lost /
  rows duplicated are counted);
- no shard finished before the kill was computed again (its completion marker is untouched).

    python bench/faults.py --trials 20          # prints: faults injected / runs recovered / rows lost / duplicated
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(args: argparse.Namespace) -> None:
    """Run the featurisation flow; log each LanceDB write's start and end (flushed) to args.trace."""
    from prefect import flow
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.steps import run_feature_shards
    from winnow.results import FeaturePlan
    from winnow.features.shards import FeatureJob, plan_ranges
    from winnow.settings import FeatureSettings, ModelSettings
    from winnow.store import feature_tables
    from winnow.training.checkpoints import read_checkpoints

    trace = open(args.trace, "a", buffering=1)
    real_write = feature_tables.write_features

    def traced_write(*a, **kw):
        trace.write(f"write-start {time.time()}\n")
        n = real_write(*a, **kw)
        trace.write(f"write-end {time.time()}\n")
        return n

    feature_tables.write_features = traced_write  # the shard code looks it up on the module at call time
    job = FeatureJob(args.store, "pool", "feats", args.model, FeatureSettings(proj_dim=256, shard_size=4, batch_size=2),
                     ModelSettings(max_length=64), "gradients", tuple(read_checkpoints(args.warm)), "adam")

    @flow(name="featurise-under-faults", task_runner=ThreadPoolTaskRunner(max_workers=1))
    def featurise() -> tuple[int, int]:
        return run_feature_shards([FeaturePlan(job, tuple(plan_ranges(args.rows, 4)))])

    trace.write(f"start {time.time()}\n")
    featurise()
    trace.write(f"done {time.time()}\n")


def prepare(work: Path, rows: int) -> tuple[str, str]:
    """A tiny model, a pool table of ``rows`` records and a warm-up with two checkpoints."""
    from tests.fixtures.tiny import make_tiny_model
    from winnow.data.formatting import encode
    from winnow.data.records import parse_record
    from winnow.models.loading import load_model, load_tokenizer
    from winnow.settings import LoraSettings, TrainSettings
    from winnow.training.trainer import train_lora

    model = str(make_tiny_model(work / "model"))
    recs = [parse_record({"prompt": f"question {i}: " + "the quick brown fox " * (i % 5 + 1), "response": f"answer {i}",
                          "source": f"s{i % 3}", "task": "t", "id": f"r{i}"}) for i in range(rows)]
    tok = load_tokenizer(model)
    train_lora(load_model(model), [encode(tok, r, 64) for r in recs[:8]], pad_id=tok.pad_token_id,
               train=TrainSettings(epochs=2, lr=1e-2), lora=LoraSettings(r=4, alpha=8), out_dir=work / "warm",
               progress=False)
    (work / "records.json").write_text(json.dumps([r.to_json() for r in recs]))
    return model, str(work / "warm")


def fresh_store(work: Path, name: str) -> str:
    from winnow.data.records import parse_record
    from winnow.store import feature_tables, lance, record_tables

    store = str(work / name)
    shutil.rmtree(store, ignore_errors=True)
    db = lance.connect(store)
    record_tables.write_records(db, "pool", [parse_record(r) for r in json.loads((work / "records.json").read_text())])
    feature_tables.create_feature_table(db, "feats", 256, {"bench": "faults"})
    return store


def spawn(work: Path, store: str, model: str, warm: str, rows: int, trace: Path) -> subprocess.Popen:
    env = {**os.environ, "PREFECT_HOME": str(work / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "DO_NOT_TRACK": "1", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
           "PREFECT_LOGGING_LEVEL": "WARNING", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
           "TQDM_DISABLE": "1"}
    return subprocess.Popen([sys.executable, __file__, "--child", "--store", store, "--model", model, "--warm", warm,
                             "--rows", str(rows), "--trace", str(trace)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)


def snapshot(store: str) -> tuple[dict, dict]:
    """({key: vector bytes}, {marker key: finished_at}) of a store, plus duplicate count in the keys."""
    from winnow.store import lance, shard_markers

    db = lance.connect(store)
    t = db.open_table("feats").to_arrow()
    keys = t.column("key").to_pylist()
    vecs = t.column("vector").to_pylist()
    rows = {}
    dup = 0
    for k, v in zip(keys, vecs):
        dup += k in rows
        rows[k] = bytes(str(v), "utf8")
    markers = {}
    if lance.table_exists(db, shard_markers.MARKERS):
        m = db.open_table(shard_markers.MARKERS).to_arrow()
        markers = dict(zip(m.column("key").to_pylist(), m.column("finished_at").to_pylist()))
    return {"rows": rows, "dup": dup}, markers


def writes(trace: Path) -> list[tuple[float, float]]:
    lines = [l.split() for l in trace.read_text().splitlines()]
    t0 = next(float(t) for k, t in lines if k == "start")
    starts = [float(t) - t0 for k, t in lines if k == "write-start"]
    ends = [float(t) - t0 for k, t in lines if k == "write-end"]
    return list(zip(starts, ends))


def killed_in_write(trace: Path) -> bool:
    kinds = [l.split()[0] for l in trace.read_text().splitlines()]
    return bool(kinds) and kinds[-1] == "write-start"


def run_trials(trials: int, seed: int, rows: int, work: Path) -> dict:
    model, warm = prepare(work, rows)
    ref_trace = work / "ref.trace"
    store = fresh_store(work, "ref")
    t0 = time.time()
    proc = spawn(work, store, model, warm, rows, ref_trace)
    if proc.wait() != 0:
        raise SystemExit(f"reference run failed:\n{proc.stderr.read().decode()[-3000:]}")
    duration = time.time() - t0
    reference, _ = snapshot(store)
    intervals = writes(ref_trace)
    startup = next(float(l.split()[1]) for l in ref_trace.read_text().splitlines() if l.startswith("start")) - t0
    rng = random.Random(seed)
    out = {"faults_injected": 0, "runs_recovered": 0, "rows_lost": 0, "rows_duplicated": 0, "vectors_differ": 0,
           "finished_shards_recomputed": 0, "killed_during_write": 0, "killed_before_flow_start": 0,
           "reference_seconds": round(duration, 1), "trials": []}
    for trial in range(trials):
        store = fresh_store(work, f"trial{trial}")
        trace = work / f"trial{trial}.trace"
        t_spawn = time.time()
        proc = spawn(work, store, model, warm, rows, trace)
        if trial % 2 == 0 and intervals:  # aimed: kill the moment the chosen LanceDB write begins
            target = rng.randrange(len(intervals))
            while proc.poll() is None:
                if trace.exists() and trace.read_text().count("write-start") > target:
                    break
                time.sleep(0.0005)
            at = time.time() - t_spawn
        else:  # uniform over the flow's run time, counted from its first line
            at = rng.uniform(0.0, max(0.1, 0.7 * (duration - startup)))  # inside the run, not after it
            while proc.poll() is None and not (trace.exists() and trace.read_text().startswith("start")):
                time.sleep(0.01)
            time.sleep(at)
            at = time.time() - t_spawn  # seconds since spawn, like the aimed trials
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            out["faults_injected"] += 1
        proc.wait()
        in_write = trace.exists() and killed_in_write(trace)
        _, markers_before = snapshot(store)
        rerun = spawn(work, store, model, warm, rows, work / f"trial{trial}.rerun.trace")
        ok = rerun.wait() == 0
        got, markers_after = snapshot(store)
        lost = len(set(reference["rows"]) - set(got["rows"]))
        differ = sum(1 for k, v in reference["rows"].items() if k in got["rows"] and got["rows"][k] != v)
        recomputed = sum(1 for k, t in markers_before.items() if markers_after.get(k) != t)
        out["runs_recovered"] += ok and lost == 0 and differ == 0 and got["dup"] == 0
        out["rows_lost"] += lost
        out["rows_duplicated"] += got["dup"] + max(0, len(got["rows"]) - len(reference["rows"]))
        out["vectors_differ"] += differ
        out["finished_shards_recomputed"] += recomputed
        out["killed_during_write"] += in_write
        out["killed_before_flow_start"] += not (trace.exists() and trace.read_text().startswith("start"))
        out["trials"].append({"kill_at_s": round(at, 2), "in_write": in_write, "recovered": ok, "lost": lost,
                              "differ": differ, "recomputed": recomputed,
                              "finished_before_kill": len(markers_before)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rows", type=int, default=48)
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench" / "faults.json"))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--warm", help=argparse.SUPPRESS)
    ap.add_argument("--trace", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory(prefix="winnow-faults-") as tmp:
        res = run_trials(args.trials, args.seed, args.rows, Path(tmp))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(f"faults injected {res['faults_injected']} / runs recovered {res['runs_recovered']} / rows lost "
          f"{res['rows_lost']} / rows duplicated {res['rows_duplicated']} / vectors differing {res['vectors_differ']} "
          f"/ finished shards recomputed {res['finished_shards_recomputed']} "
          f"({res['killed_during_write']} kills landed inside a LanceDB write; reference run {res['reference_seconds']} s)")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
