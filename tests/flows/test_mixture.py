"""The mixture flow on the tiny model: proxies, TaskPGM, warm starts and DUET trials; and external feedback."""
from __future__ import annotations

import threading
import time

import pytest

pytestmark = pytest.mark.integration


def _settings(tiny_model_path: str, trials: int, within: str = "random"):
    from winnow.settings import build_settings

    return build_settings({"model": {"name": tiny_model_path, "max_length": 64},
                           "warmup": {"fraction": 0.5, "train": {"epochs": 2, "lr": 0.01}},
                           "features": {"proj_dim": 64, "shard_size": 10},
                           "mixture": {"budget": 6, "trials": trials, "sampler": "tpe", "proxy": {"epochs": 1, "lr": 0.01},
                                       "score": "neg_loss", "feedback_timeout_s": 120, "within": within},
                           "finetune": {"epochs": 1, "lr": 0.01}, "eval": {"max_new_tokens": 3}})


def _runner():
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner(cluster_class="distributed.LocalCluster",
                          cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "processes": True,
                                          "host": "127.0.0.1", "dashboard_address": None})


def test_mixture_search_end_to_end(prefect_harness, tiny_model_path, data_dir, tmp_path) -> None:
    from flows.mixture import mixture

    kw = dict(pool=str(data_dir / "good" / "pool.jsonl"), test=str(data_dir / "good" / "test.jsonl"),
              out=str(tmp_path / "mix"), settings=_settings(tiny_model_path, 2, "influence").model_dump(mode="json"),
              store_uri=str(tmp_path / "store"), work_dir=str(tmp_path / "work"),
              optuna_storage=str(tmp_path / "optuna.db"), study="t")
    res = mixture.with_options(task_runner=_runner())(**kw)
    assert [t["start"] for t in res["trials"]] == ["uniform", "size-proportional", "taskpgm", "duet", "duet"]
    assert set(res["taskpgm"]) == {"alpha", "beta", "gamma"} and abs(sum(res["taskpgm"].values()) - 1) < 1e-9
    assert (tmp_path / "mix" / "affinity.png").exists() and (tmp_path / "mix" / "trials.png").exists()
    import json

    scores = json.loads((tmp_path / "work" / "mixture" / "t" / "influence.json").read_text())
    assert len(scores) == 20 and all(isinstance(v, float) for v in scores.values())  # every pool example
    # The search saw only the validation half of the test file; the chosen mixture (and the two fixed before
    # the search) are scored once on the other half, and the report says which split is which.
    splits = tmp_path / "work" / "mixture" / "t" / "splits"
    val_ids = {json.loads(line).get("id") or line for line in (splits / "val.jsonl").read_text().splitlines()}
    test_ids = {json.loads(line).get("id") or line for line in (splits / "test.jsonl").read_text().splitlines()}
    assert val_ids and test_ids and not val_ids & test_ids
    assert res["best_score_split"] == "validation" and set(res["test"]) == {"chosen", "uniform", "taskpgm"}
    report = (tmp_path / "mix" / "mixture.md").read_text()
    assert "## Trials (validation split)" in report and "## Test split" in report
    assert "## Decontamination of the domains against validation and test" in report
    # Re-running resumes the study: the five trials are complete, nothing is added or repeated.
    res2 = mixture.with_options(task_runner=_runner())(**kw)
    assert [t["trial"] for t in res2["trials"]] == [0, 1, 2, 3, 4]


def test_external_feedback_path_completes(prefect_harness, tiny_model_path, data_dir, tmp_path) -> None:
    import optuna

    from flows.mixture import mixture
    from winnow.mixture.duet import post_feedback, storage_for

    storage = str(tmp_path / "optuna.db")
    posted: list[int] = []

    def rater() -> None:  # a person rating each published adapter
        deadline = time.time() + 600
        while time.time() < deadline and len(posted) < 4:
            try:
                study = optuna.load_study(study_name="ext", storage=storage_for(storage))
            except KeyError:
                time.sleep(0.5)
                continue
            for t in study.get_trials(deepcopy=False):
                if t.state.name == "RUNNING" and t.number not in posted:
                    post_feedback(storage, "ext", t.number, 0.1 * (t.number + 1))
                    posted.append(t.number)
            time.sleep(0.5)

    threading.Thread(target=rater, daemon=True).start()
    res = mixture.with_options(task_runner=_runner())(
        pool=str(data_dir / "good" / "pool.jsonl"), test=str(data_dir / "good" / "test.jsonl"),
        out=str(tmp_path / "mix"), settings=_settings(tiny_model_path, 1).model_dump(mode="json"),
        store_uri=str(tmp_path / "store"), work_dir=str(tmp_path / "work"), optuna_storage=storage, study="ext",
        feedback="external")
    assert posted == [0, 1, 2, 3]
    assert [t["score"] for t in res["trials"]] == [0.1, 0.2, 0.3, 0.4] and res["best_score"] == pytest.approx(0.4)


def test_domains_lose_their_copies_of_target_items(tmp_path) -> None:
    """A domain file holding a copy of a test item loses it before any proxy or trial trains on it."""
    import json

    from tasks.mixture import decontaminate_domains_task
    from winnow.results import Domains
    from winnow.settings import DecontaminationSettings

    test = tmp_path / "test.jsonl"
    test.write_text("".join(json.dumps({"id": f"t{i}", "prompt": f"is {n} even?", "response": "yes" if n % 2 == 0 else "no",
                                        "source": "target", "task": "parity"}) + "\n" for i, n in enumerate(range(40, 46))))
    dom = tmp_path / "alpha.train.jsonl"
    rows = [{"id": f"a{i}", "prompt": f"question number {i}: what is {i} plus {i}?", "response": str(2 * i),
             "source": "alpha", "task": "alpha"} for i in range(5)]
    rows.append({"id": "leak", "prompt": "IS 43 EVEN", "response": "No.", "source": "alpha", "task": "alpha"})
    dom.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = decontaminate_domains_task.fn(Domains(("alpha",), {"alpha": str(dom)}, {}, {"alpha": 6}, {}), [str(test)],
                                        str(tmp_path / "clean"), DecontaminationSettings(embedder=""))
    kept = [json.loads(line)["id"] for line in open(out.train["alpha"])]
    assert kept == ["a0", "a1", "a2", "a3", "a4"] and out.sizes["alpha"] == 5
    assert [f["id"] for f in out.decontamination["alpha"]["found"]] == ["leak"]
