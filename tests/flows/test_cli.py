"""Every README command, run the way a user runs it: the installed ``winnow`` console script in a subprocess,
on the tiny model, each checked by its exit code and the files or tables the README promises.

The README's first command once crashed on its first line for nine commits while the suite passed, because no
test ran the console script (issue #13). These tests are that check. The curate run also pins its outcome in a
golden file (``tests/data/golden/curate_tiny.json``, torchtune style): a change of behaviour anywhere in the
chain fails here and must be acknowledged by regenerating the file in the same commit
(``WINNOW_UPDATE_GOLDEN=1 python -m pytest tests/flows/test_cli.py -k golden``).
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import httpx
import pytest
import yaml

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
WINNOW = str(Path(sys.executable).with_name("winnow"))
GOLDEN = ROOT / "tests" / "data" / "golden" / "curate_tiny.json"
GOOD = ROOT / "tests" / "data" / "good"
DATA = ["--pool", str(GOOD / "pool.jsonl"), "--query", str(GOOD / "query.jsonl"), "--test", str(GOOD / "test.jsonl")]
TINY_CONFIG = {"model": {"max_length": 64},
               "warmup": {"fraction": 0.5, "train": {"epochs": 2, "lr": 0.01, "seed": 0}},
               "features": {"proj_dim": 256, "shard_size": 10, "batch_size": 5},
               "selection": {"selector": "round_robin", "budget": 0.5},
               "finetune": {"epochs": 1, "lr": 0.01, "seed": 0}, "eval": {"max_new_tokens": 3},
               "mixture": {"proxy": {"epochs": 1, "lr": 0.01}, "sampler": "tpe", "score": "neg_loss"}}


def winnow(*args: str, home: Path, timeout: float = 600, env: dict[str, str] | None = None,
           expect: int | None = 0) -> subprocess.CompletedProcess:
    """Run ``winnow ARGS`` as a user would (fresh process, own private Prefect server, local Dask cluster)."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("PREFECT_HOME", "PREFECT_API_URL", "WINNOW_LOG_FILE", "PREFECT_LOGGING_SETTINGS_PATH")}
    run_env = {**base, "WINNOW_HOME": str(home), "WINNOW_DASK_WORKERS": "1", "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.run([WINNOW, *args], cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=timeout)
    if expect is not None:
        assert proc.returncode == expect, (f"winnow {' '.join(args)} exited {proc.returncode}, expected {expect}\n"
                                           f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-5000:]}")
    return proc


def table_rows(stdout: str) -> dict[str, list[str]]:
    """The rows of the rich tables a command printed, by their first cell."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃|]", line) if c.strip()]
        if len(cells) >= 2:
            rows[cells[0]] = cells[1:]
    return rows


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """One WINNOW_HOME for the module's commands (later commands reuse the store, as a user's would), the
    tiny model, and a settings file for ``--config``."""
    from tests.fixtures.tiny import make_tiny_model

    root = tmp_path_factory.mktemp("cli")
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY_CONFIG))
    return {"home": root / "home", "model": make_tiny_model(root / "model"), "config": config, "root": root}


def _curate(tiny, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return winnow("curate", *DATA, "--out", str(out), "--config", str(tiny["config"]), "--model", str(tiny["model"]),
                  "--set", "features.seed=0", *extra, home=tiny["home"])


def test_curate_golden_outcome(tiny) -> None:
    """Budget as a count, --config, --set and --model: the selected ids and metrics match the golden file."""
    out = tiny["root"] / "golden"
    proc = _curate(tiny, out, "--budget", "6")
    rows = table_rows(proc.stdout)
    assert {"base", "random", "selected"} <= set(rows), proc.stdout
    assert "budget 6 examples" in proc.stdout and f"report: {out / 'report.md'}" in proc.stdout
    for name in ("report.md", "metrics.json", "selected.jsonl", "random.jsonl", "settings.yaml",
                 "selected_ordering.parquet", "subset_sources.png"):
        assert (out / name).is_file(), name
    selected = [json.loads(line)["id"] for line in (out / "selected.jsonl").read_text().splitlines()]
    randoms = [json.loads(line)["id"] for line in (out / "random.jsonl").read_text().splitlines()]
    metrics = json.loads((out / "metrics.json").read_text())["results"]
    got = {"selected_ids": selected, "random_ids": randoms,
           "metrics": {m: {k: round(v[k], 4) for k in ("exact_match", "response_loss")} for m, v in metrics.items()}}
    if os.environ.get("WINNOW_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(got, indent=1) + "\n")
    want = json.loads(GOLDEN.read_text())
    assert got["selected_ids"] == want["selected_ids"], "selection changed: regenerate the golden file on purpose"
    assert got["random_ids"] == want["random_ids"]
    for model, m in want["metrics"].items():
        for key, value in m.items():  # tolerance: float summation order across BLAS builds
            assert got["metrics"][model][key] == pytest.approx(value, abs=2e-3), (model, key)
    # The table shows the same numbers the metrics file holds.
    assert rows["selected"][1] == f"{metrics['selected']['response_loss']:.3f}"
    # Timings are reported, not asserted: how close the planner comes is measured by bench/cascade.py (one
    # invocation on a quiet machine), never by a correctness test on a loaded one.
    assert "## Timings" in (out / "report.md").read_text()


def test_export_round_trips_and_runs_lists_it(tiny) -> None:
    """A curate run's subset leaves in every layout and format and reads back as the same conversations (with
    Winnow's own loader, ``datasets.load_from_disk``); its adapter loads with ``PeftModel.from_pretrained`` on
    the base its config names, and the merged model gives the adapter's logits. ``winnow runs`` lists the run
    and ``runs show`` finds it by id; ``export`` takes that id as well as the folder."""
    import datasets
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from winnow.data.loaders import load_records

    out = tiny["root"] / "export-run"
    _curate(tiny, out, "--budget", "6")
    want = [r.messages for r in load_records(out / "selected.jsonl").records]
    listed = winnow("runs", home=tiny["home"])
    assert str(out) in listed.stdout and "curate" in listed.stdout
    run_id = next(line.split("|")[1].strip() for line in listed.stdout.splitlines() if str(out) in line)
    shown = winnow("runs", "show", run_id, home=tiny["home"])
    assert f"out: {out}" in shown.stdout and "headline:" in shown.stdout
    for fmt in ("jsonl", "parquet", "hf"):
        for layout in ("messages", "prompt_completion", "alpaca", "sharegpt"):
            dest = tiny["root"] / f"export-{fmt}-{layout}"
            winnow("export", run_id if fmt == "hf" else str(out), "--out", str(dest), "--format", fmt,
                   "--layout", layout, "--no-adapter", home=tiny["home"])
            assert "6 examples" in (dest / "README.md").read_text()
            if fmt == "hf":
                ds = datasets.load_from_disk(str(dest / "dataset"))
                assert len(ds) == 6
                dest = dest / "from-disk.jsonl"
                ds.to_json(str(dest))
            else:
                dest = dest / f"data.{fmt}"
            got = [r.messages for r in load_records(dest).records]
            assert got == want, (fmt, layout)
    # TRL reads the conversational layouts as they are: its chat-template formatting gives the training text
    # (messages) or the prompt and the completion (prompt_completion), with each subset's answer in place.
    from transformers import AutoTokenizer
    from trl.data_utils import apply_chat_template, is_conversational

    tok = AutoTokenizer.from_pretrained(tiny["model"])
    for layout, fields in (("messages", {"text"}), ("prompt_completion", {"prompt", "completion"})):
        ds = datasets.load_from_disk(str(tiny["root"] / f"export-hf-{layout}" / "dataset"))
        answers = [r.to_json()["messages"][-1]["content"] for r in load_records(out / "selected.jsonl").records]
        assert len(ds) == len(answers) == 6
        for row, answer in zip(ds, answers):
            assert is_conversational(row), layout
            text = apply_chat_template({k: row[k] for k in ("messages", "prompt", "completion") if k in row}, tok)
            assert set(text) == fields and answer in text["text" if layout == "messages" else "completion"]
    dest = tiny["root"] / "export-adapter"
    proc = winnow("export", str(out), "--out", str(dest), home=tiny["home"])
    assert f"adapter for {tiny['model']}" in proc.stdout
    config = json.loads((dest / "adapter" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny["model"])
    card = (dest / "adapter" / "README.md").read_text()
    assert "base_model:" in card and "fingerprint" in card
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(config["base_model_name_or_path"]),
                                           str(dest / "adapter")).eval()
    merged_dir = tiny["root"] / "export-merged"
    winnow("export", str(out), "--out", str(merged_dir), "--merge", "--format", "parquet", home=tiny["home"])
    merged = AutoModelForCausalLM.from_pretrained(merged_dir / "merged").eval()
    ids = torch.tensor([[1, 5, 9, 13]])
    with torch.no_grad():
        assert torch.allclose(peft_model(ids).logits, merged(ids).logits, atol=1e-4)
    missing = winnow("export", "nope", "--out", str(dest), home=tiny["home"], expect=2)
    assert "neither a run folder" in missing.stderr and "Traceback" not in missing.stderr


def test_plan_prints_phases_and_cheaper_options(tiny) -> None:
    out = tiny["root"] / "plan.json"
    proc = winnow("plan", *DATA, "--config", str(tiny["config"]), "--model", str(tiny["model"]), "--budget", "6",
                  "--workers", "2", "--out", str(out), home=tiny["home"])
    rows = table_rows(proc.stdout)
    assert {"warmup", "features", "select", "train_evaluate", "as configured", "1 warm-up checkpoints",
            "4 workers"} <= set(rows), proc.stdout
    assert "total:" in proc.stdout
    plan = json.loads(out.read_text())
    assert plan["workload"]["pool_rows"] == 20 and plan["workload"]["budget"] == 6
    assert plan["total"] > 0 and plan["rates"]["grad_s_per_token"] > 0


def test_curate_leaves_out_copies_of_test_items(tiny) -> None:
    """Two test items planted in the pool (one verbatim under another instruction, one re-cased with its
    punctuation changed): with every row in the budget, both arms leave them out, the report lists them, and
    the explicit switch keeps them. The first run's query and test sets are in columns of their own
    (``data.target.map``), so the guard, the features and the evaluation all read them through the map."""
    pool = tiny["root"] / "contaminated-pool.jsonl"
    planted = [{"id": "copy-verbatim", "messages": [{"role": "system", "content": "Answer yes or no."},
                                                    {"role": "user", "content": "is 41 even?"},
                                                    {"role": "assistant", "content": "no"}], "source": "leak", "task": "leak"},
               {"id": "copy-recased", "prompt": "IS 44 EVEN!!", "response": "Yes.", "source": "leak", "task": "leak"}]
    pool.write_text((GOOD / "pool.jsonl").read_text() + "".join(json.dumps(p) + "\n" for p in planted))
    data = ["--pool", str(pool), "--query", str(GOOD / "query.jsonl"), "--test", str(GOOD / "test.jsonl")]
    base = ["--config", str(tiny["config"]), "--model", str(tiny["model"]), "--budget", "22"]
    own = {}
    for role in ("query", "test"):  # the same sets as a benchmark ships them: q/a columns
        own[role] = tiny["root"] / f"bench-{role}.jsonl"
        own[role].write_text("".join(json.dumps({"q": r["messages"][0]["content"], "a": r["messages"][1]["content"],
                                                 "source": r["source"], "task": r["task"]}) + "\n"
                                     for r in map(json.loads, (GOOD / f"{role}.jsonl").read_text().splitlines())))
    out = tiny["root"] / "decontaminated"
    proc = winnow("curate", "--pool", str(pool), "--query", str(own["query"]), "--test", str(own["test"]),
                  "--out", str(out), *base, "--set", "data.target.map.prompt=q", "--set", "data.target.map.response=a",
                  home=tiny["home"])
    assert "budget 20 examples" in proc.stdout
    for arm in ("selected", "random"):
        ids = {json.loads(line)["id"] for line in (out / f"{arm}.jsonl").read_text().splitlines()}
        assert len(ids) == 20 and not ids & {"copy-verbatim", "copy-recased"}, arm
        found = [json.loads(line) for line in (out / f"{arm}_contaminated.jsonl").read_text().splitlines()]
        assert {f["id"] for f in found} == {"copy-verbatim", "copy-recased"}
    report = (out / "report.md").read_text()
    assert "## Decontamination against the test set" in report and "copy-verbatim" in report
    assert str(own["test"]) in report  # the report counts the user's file, not the canonical copy
    n_test = len((GOOD / "test.jsonl").read_text().splitlines())
    assert json.loads((out / "metrics.json").read_text())["results"]["selected"]["n"] == n_test
    kept = tiny["root"] / "kept"
    winnow("curate", *data, "--out", str(kept), *base, "--set", "selection.decontaminate.enabled=false",
           home=tiny["home"])
    ids = {json.loads(line)["id"] for line in (kept / "selected.jsonl").read_text().splitlines()}
    assert {"copy-verbatim", "copy-recased"} <= ids and "were **kept**" in (kept / "report.md").read_text()


def test_select_small_train_big(tiny) -> None:
    """LESS-T (finetune.model): the tiny model selects, a wider one (another size, its own weights) trains and
    is evaluated; the adapters are built on the wider model, the selection's warm-up on the small one, and the
    report says which model did what. The mixture search, which trains on model.name, refuses it in one line."""
    from tests.fixtures.tiny import make_tiny_model

    big = make_tiny_model(tiny["root"] / "model-wide", seed=1, hidden=48)
    out = tiny["root"] / "less-t"
    proc = _curate(tiny, out, "--budget", "6", "--set", f"finetune.model={big}")
    assert set(table_rows(proc.stdout)) >= {"base", "random", "selected"}
    report = (out / "report.md").read_text()
    assert f"fine-tunes and every evaluation above: `{big}`" in report and f"`{tiny['model']}`" in report
    bases = {json.loads(p.read_text())["base_model_name_or_path"] for p in tiny["home"].rglob("adapter_config.json")}
    assert {str(big), str(tiny["model"])} <= bases
    proc = winnow("mixture", "--pool", str(GOOD / "pool.jsonl"), "--test", str(GOOD / "test.jsonl"), "--out",
                  str(tiny["root"] / "less-t-mixture"), "--config", str(tiny["config"]), "--model", str(tiny["model"]),
                  "--set", f"finetune.model={big}", home=tiny["home"], expect=2)
    assert "finetune.model: the mixture search trains" in proc.stderr and "Traceback" not in proc.stderr


def test_curate_with_an_lm_eval_task(tiny) -> None:
    """eval.lm_eval_tasks: a local lm-eval task (YAML over a local file) runs on base, random and selected, and
    the report and metrics.json carry its numbers beside the test set's."""
    pytest.importorskip("lm_eval")
    folder = tiny["root"] / "lm-eval-tasks"
    folder.mkdir(exist_ok=True)
    data = folder / "parity.jsonl"
    data.write_text("".join(json.dumps({"question": f"is {n} even?", "choices": ["yes", "no"], "answer": n % 2}) + "\n"
                            for n in range(40, 46)))
    (folder / "parity.yaml").write_text(
        "task: winnow_cli_parity\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: " + str(data) +
        "\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: \"Question: {{question}}\\nAnswer:\"\n"
        "doc_to_choice: \"{{choices}}\"\ndoc_to_target: answer\nmetric_list:\n  - metric: acc\n")
    out = tiny["root"] / "with-lm-eval"
    _curate(tiny, out, "--budget", "6", "--set", "eval.lm_eval_tasks=[winnow_cli_parity]",
            "--set", f"eval.lm_eval_include={folder}")
    results = json.loads((out / "metrics.json").read_text())["results"]
    for model in ("base", "random", "selected"):
        acc = results[model]["lm_eval"]["winnow_cli_parity"]["acc"]
        assert acc in {i / 6 for i in range(7)}, (model, acc)  # six items
    assert "## lm-evaluation-harness" in (out / "report.md").read_text()


@pytest.mark.parametrize("budget, size", [("25%", 5), ("1", 1)])  # "0.25" parses as "25%" (tests/winnow/test_budget.py)
def test_curate_budget_share_and_one(tiny, budget: str, size: int) -> None:
    """A share is a share of the pool; ``1`` is one example, never the whole pool."""
    out = tiny["root"] / f"budget-{budget.replace('%', 'pct')}"
    proc = _curate(tiny, out, "--budget", budget)
    assert f"budget {size} examples" in proc.stdout
    assert len((out / "selected.jsonl").read_text().splitlines()) == size
    assert len((out / "random.jsonl").read_text().splitlines()) == size


@pytest.mark.parametrize("budget, message", [
    ("0", "--budget: must be at least 1 example, got 0"),
    ("-3", "--budget: must be at least 1 example, got -3"),
    ("2.5", "--budget: a share must be at most 100% (1.0), got 2.5"),
    ("lots", "--budget: 'lots' is not a budget"),
    ("300", "--budget (selection.budget): 300 examples asked, the pool has only 20"),
])
def test_bad_budget_is_one_line_naming_the_flag(tiny, budget: str, message: str) -> None:
    proc = winnow("curate", *DATA, "--out", str(tiny["root"] / "bad-budget"), "--model", str(tiny["model"]),
                  "--budget", budget, home=tiny["home"], expect=2)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last, proc.stderr


def test_bad_data_is_one_line_and_the_traceback_goes_to_the_log(tiny, tmp_path) -> None:
    bad = tmp_path / "pool.jsonl"
    bad.write_text('{"prompt": "no response here", "source": "s", "task": "t"}\nnot json\n')
    out = tmp_path / "run"
    proc = winnow("curate", "--pool", str(bad), "--query", str(GOOD / "query.jsonl"), "--test",
                  str(GOOD / "test.jsonl"), "--out", str(out), "--model", str(tiny["model"]), home=tiny["home"],
                  expect=2)
    assert "Traceback" not in proc.stderr + proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and f"{bad}: no usable record" in errors[0], proc.stderr
    assert f"(traceback: {out / 'winnow.log'})" in errors[0]
    assert "Traceback" in (out / "winnow.log").read_text()


def test_unexpected_errors_keep_their_traceback(tiny, tmp_path) -> None:
    """Only expected errors are shortened: a bug (here a reward function that raises) still shows where."""
    boom = tmp_path / "boom_reward.py"
    boom.write_text("def reward(prompt, response, label):\n    raise RuntimeError('reward exploded')\n")
    # A reward module must be importable by the workers: it goes on their path.
    proc = winnow("curate", *DATA, "--out", str(tmp_path / "run"), "--config", str(tiny["config"]), "--model",
                  str(tiny["model"]), "--budget", "4", "--target-metric", "boom_reward:reward", "--set",
                  "nice.samples=2", "--set", "nice.max_new_tokens=2", home=tiny["home"],
                  env={"PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}"}, expect=None)
    assert proc.returncode not in (0, 2), proc.stderr[-3000:]
    assert "Traceback" in proc.stderr and "reward exploded" in proc.stderr


def test_curate_target_metric_adds_nice(tiny) -> None:
    out = tiny["root"] / "nice"
    proc = _curate(tiny, out, "--budget", "6", "--target-metric", "tests.fixtures.rewards:length",
                   "--set", "nice.samples=3", "--set", "nice.max_new_tokens=4")
    assert {"base", "random", "selected", "nice"} <= set(table_rows(proc.stdout)), proc.stdout
    assert len((out / "nice.jsonl").read_text().splitlines()) == 6
    assert "## NICE rewards per query" in (out / "report.md").read_text()


def test_curate_prompts_only_queries_with_a_label_free_metric(tiny) -> None:
    """A query set of prompts only: NICE against random (no loss-gradient arm); without a label-free metric,
    one line that says what is missing and what would work."""
    prompts = tiny["root"] / "prompts.jsonl"
    queries = [json.loads(line) for line in (GOOD / "query.jsonl").read_text().splitlines()]
    prompts.write_text("".join(json.dumps({"prompt": q["messages"][0]["content"], "source": "q", "task": "q"}) + "\n"
                               for q in queries))
    out = tiny["root"] / "prompts-only"
    args = ["curate", "--pool", str(GOOD / "pool.jsonl"), "--query", str(prompts), "--test", str(GOOD / "test.jsonl"),
            "--config", str(tiny["config"]), "--model", str(tiny["model"]), "--budget", "6"]
    proc = winnow(*args, "--out", str(out), "--target-metric", "tests.fixtures.rewards:length", "--set",
                  "nice.samples=3", "--set", "nice.max_new_tokens=4", home=tiny["home"])
    rows = table_rows(proc.stdout)
    assert {"base", "random", "nice"} <= set(rows) and "selected" not in rows, proc.stdout
    assert "The query set has prompts only" in (out / "report.md").read_text()
    bad = winnow(*args, "--out", str(tiny["root"] / "prompts-em"), "--target-metric", "exact_match",
                 home=tiny["home"], expect=2)
    assert "queries have no response" in bad.stderr and "label-free metric" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_select_on_an_existing_store(tiny) -> None:
    """After curate, `select` re-cuts the stored features with another selector and budget, loading no model."""
    _curate(tiny, tiny["root"] / "for-select", "--budget", "6")  # cached when the golden test ran first
    from winnow.store import lance
    from winnow.store.ingest import table_name_for

    # Other tests of this module curate other pools into the same store: take the features of this pool, and
    # the query features of the same warm-up (feature tables are named by hashes, so their order means nothing).
    db = lance.connect(str(tiny["home"] / "lancedb"))
    tables = sorted(p.stem for p in (tiny["home"] / "lancedb").glob("*.lance"))
    prov = {t: lance.provenance_of(db, t) for t in tables if t.startswith(("grads_adam__", "grads_sgd__"))}
    pool = next(t for t, p in prov.items() if t.startswith("grads_adam__")
                and p["records"] == table_name_for("pool", str(GOOD / "pool.jsonl")))
    query = next(t for t, p in prov.items() if t.startswith("grads_sgd__") and p["adapters"] == prov[pool]["adapters"])
    out = tiny["root"] / "select"
    proc = winnow("select", "--pool-features", pool, "--query-features", query, "--selector", "dg", "--budget", "15%",
                  "--out", str(out), home=tiny["home"])
    assert "3 of 20 examples by doubly_greedy" in proc.stdout
    assert len((out / "doubly_greedy.jsonl").read_text().splitlines()) == 3
    assert (out / "doubly_greedy_ordering.parquet").is_file()
    missing = winnow("select", "--pool-features", "no_such_table", "--query-features", query, "--out", str(out),
                     home=tiny["home"], expect=2)
    assert "no_such_table" in missing.stderr and "Traceback" not in missing.stderr


def test_compare(tiny) -> None:
    out = tiny["root"] / "compare"
    proc = winnow("compare", "--pool", str(GOOD / "pool.jsonl"), "--query", str(GOOD / "query.jsonl"), "--out", str(out),
                  "--representation", "hidden", "--selector", "rr", "--selector", "uot", "--budget", "4",
                  "--config", str(tiny["config"]), "--model", str(tiny["model"]), home=tiny["home"])
    rows = (out / "compare.csv").read_text().splitlines()
    assert rows[0].startswith("representation,selector,size") and len(rows) == 3
    assert {r.split(",")[1] for r in rows[1:]} == {"round_robin", "uot"} and all(r.split(",")[2] == "4" for r in rows[1:])
    assert (out / "compare.md").is_file() and "round_robin" in proc.stdout


def test_mixture_two_trials(tiny) -> None:
    out = tiny["root"] / "mixture"
    proc = winnow("mixture", "--pool", str(GOOD / "pool.jsonl"), "--test", str(GOOD / "test.jsonl"), "--out", str(out),
                  "--study", "cli-auto", "--budget", "6", "--set", "mixture.trials=2", "--config", str(tiny["config"]),
                  "--model", str(tiny["model"]), home=tiny["home"])
    assert "mixture search 'cli-auto'" in proc.stdout
    starts = [cells[0] for trial, cells in table_rows(proc.stdout).items() if trial.isdigit()]
    assert starts == ["uniform", "size-proportional", "taskpgm", "duet", "duet"], proc.stdout
    assert (out / "mixture.md").is_file() and (out / "trials.png").is_file()


def test_mixture_with_external_feedback(tiny) -> None:
    """`mixture --feedback external` waits for each trial's score; `winnow feedback` posts it."""
    import optuna

    home = tiny["home"]
    env = {**{k: v for k, v in os.environ.items() if k not in ("PREFECT_HOME", "PREFECT_API_URL")},
           "WINNOW_HOME": str(home), "WINNOW_DASK_WORKERS": "1", "PYTHONPATH": str(ROOT)}
    log = tiny["root"] / "external.log"
    flow = subprocess.Popen([WINNOW, "mixture", "--pool", str(GOOD / "pool.jsonl"), "--test", str(GOOD / "test.jsonl"),
                             "--out", str(tiny["root"] / "external"), "--study", "cli-ext", "--feedback", "external",
                             "--budget", "6", "--set", "mixture.trials=1", "--config", str(tiny["config"]),
                             "--model", str(tiny["model"])], cwd=ROOT, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)
    storage = f"sqlite:///{(home / 'optuna.db').resolve()}"
    posted: list[int] = []
    try:
        deadline = time.time() + 480
        while flow.poll() is None and time.time() < deadline:
            try:
                study = optuna.load_study(study_name="cli-ext", storage=storage)
                waiting = [t.number for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))]
            except KeyError:
                waiting = []
            for number in waiting:  # a score told before the flow reaches its wait is read at once
                if number not in posted:
                    winnow("feedback", "--study", "cli-ext", "--trial", str(number), "--score", str(0.1 * number),
                           home=home)
                    posted.append(number)
            time.sleep(1)
        assert flow.wait(60) == 0, log.read_text()[-4000:]
    finally:
        if flow.poll() is None:
            flow.kill()
    assert posted == [0, 1, 2, 3]
    values = [t.value for t in optuna.load_study(study_name="cli-ext", storage=storage).trials]
    assert values == pytest.approx([0.0, 0.1, 0.2, 0.3])
    again = winnow("feedback", "--study", "cli-ext", "--trial", "0", "--score", "1", home=home, expect=2)
    assert "trial 0 of study 'cli-ext' is not waiting" in again.stderr
    nostudy = winnow("feedback", "--study", "nope", "--trial", "0", "--score", "1", home=home, expect=2)
    assert "--study: no study 'nope'" in nostudy.stderr


def test_ingest_reads_the_files_people_have(tmp_path) -> None:
    """A folder as it comes from a hub or a bucket: an Alpaca JSON array gzipped, a ShareGPT JSONL zstd-compressed,
    a chat file saved with a BOM and CRLF, one broken record; then a file of other columns with --map."""
    import gzip

    import zstandard

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    alpaca = [{"instruction": f"Add {i} and 1.", "input": "", "output": str(i + 1)} for i in range(5)]
    (inbox / "alpaca.json.gz").write_bytes(gzip.compress(json.dumps(alpaca, indent=1).encode()))
    share = [{"conversations": [{"from": "human", "value": f"Say {i}."}, {"from": "gpt", "value": str(i)}]} for i in range(4)]
    (inbox / "share.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(
        "".join(json.dumps(r) + "\n" for r in share).encode()))
    chats = [{"messages": [{"role": "user", "content": f"Hi {i}"}, {"role": "assistant", "content": "Hello"}],
              "source": "chat"} for i in range(3)]
    (inbox / "chats.jsonl").write_bytes(("".join(json.dumps(r) + "\r\n" for r in chats) + '{"messages": [}\r\n')
                                        .encode("utf-8-sig"))
    home = tmp_path / "home"
    proc = winnow("ingest", str(inbox), home=home)
    assert f"{inbox / 'alpaca.json.gz'}: alpaca 5 (array, gzip; default source / task: 5 / 5)" in proc.stdout
    assert f"{inbox / 'share.jsonl.zst'}: sharegpt 4 (jsonl, zstd; default source / task: 4 / 4)" in proc.stdout
    assert f"{inbox / 'chats.jsonl'}: messages 3 (jsonl, utf-8-sig; default source / task: 0 / 3)" in proc.stdout
    assert "13 records read: 12 used, 1 quarantined" in proc.stdout
    assert f"{inbox / 'chats.jsonl'}:4: field '<line>': malformed JSON" in proc.stdout
    assert "12 new rows in pool from 3 file(s)" in proc.stdout
    assert len((home / "quarantine" / "pool.jsonl").read_text().splitlines()) == 1
    odd = tmp_path / "odd.jsonl"
    odd.write_text("".join(json.dumps({"q": f"What is {i}?", "a": str(i)}) + "\n" for i in range(3)))
    more = tmp_path / "more.jsonl"
    more.write_text("".join(json.dumps({"prompt": f"Say {i}!", "response": str(i)}) + "\n" for i in range(2)))
    refused = winnow("ingest", str(more), str(odd), home=home, expect=2)
    assert "no known layout" in refused.stderr and "Traceback" not in refused.stderr + refused.stdout
    import lancedb

    assert lancedb.connect(str(home / "lancedb")).open_table("pool").count_rows() == 12, "a refused ingest committed a file"
    mapped = winnow("ingest", str(odd), "--map", "prompt=q,response=a", home=home)
    assert "prompt_response 3" in mapped.stdout and "3 new rows in pool" in mapped.stdout


def test_secrets_never_leak(tiny, tmp_path) -> None:
    """The judge's API key and object-storage credentials, set in the environment as .env.example says, are used
    (the judge receives the key) and appear nowhere Winnow writes: not in report.md, settings.yaml, metrics or
    predictions, not in the logs, and not in Prefect's database (parameters, artifacts, logs) or the store."""
    import uuid

    from tests.winnow.evaluation.test_rewards import _judge_server, _rating

    secrets = {"WINNOW_JUDGE_API_KEY": f"sk-winnow-{uuid.uuid4().hex}", "AWS_SECRET_ACCESS_KEY": uuid.uuid4().hex,
               "AWS_ACCESS_KEY_ID": f"AKIA{uuid.uuid4().hex[:16].upper()}"}
    home, out = tmp_path / "home", tmp_path / "run"
    with _judge_server(lambda body: _rating("7")) as (url, seen):
        proc = winnow("curate", *DATA, "--out", str(out), "--config", str(tiny["config"]), "--model", str(tiny["model"]),
                      "--budget", "4", "--target-metric", "judge", "--set", f"nice.judge_url={url}",
                      "--set", "nice.judge_model=m", "--set", "nice.samples=2", "--set", "nice.max_new_tokens=4",
                      "--set", "eval.max_new_tokens=4", home=home, env=secrets)
    assert seen and {auth for _, auth in seen} == {f"Bearer {secrets['WINNOW_JUDGE_API_KEY']}"}
    assert (out / "report.md").is_file() and (out / "settings.yaml").is_file()
    files = [p for root in (home, out) for p in root.rglob("*") if p.is_file()]
    assert any("prefect" in str(p) and p.suffix == ".db" for p in files), "Prefect's database not found to check"
    for name, value in secrets.items():
        assert value not in proc.stdout + proc.stderr, name
        leaked = [str(p) for p in files if value.encode() in p.read_bytes()]
        assert not leaked, f"{name} written to {leaked}"


def test_ingest_then_retrain(tiny, tmp_path) -> None:
    home = tmp_path / "home"
    first = winnow("ingest", str(GOOD / "pool.jsonl"), home=home)
    assert "20 new rows in pool from 1 file(s)" in first.stdout
    out = tmp_path / "retrain"
    proc = winnow("retrain", "--query", str(GOOD / "query.jsonl"), "--test", str(GOOD / "test.jsonl"), "--out", str(out),
                  "--config", str(tiny["config"]), "--model", str(tiny["model"]), "--set", "selection.budget=4",
                  home=home)
    assert {"base", "new"} <= set(table_rows(proc.stdout)), proc.stdout
    reports = list(out.glob("v*/report.md"))
    assert len(reports) == 1 and "Winnow retrain: pool" in reports[0].read_text()
    again = winnow("ingest", str(GOOD / "pool.jsonl"), home=home)
    assert "0 new rows in pool" in again.stdout
    skipped = winnow("retrain", "--query", str(GOOD / "query.jsonl"), "--test", str(GOOD / "test.jsonl"), "--out",
                     str(out), "--config", str(tiny["config"]), "--model", str(tiny["model"]), "--set",
                     "selection.budget=4", "--min-new-rows", "5", home=home)  # the same line of retrains
    assert "0 new rows since the last retrain, fewer than 5: nothing to do" in skipped.stdout


def test_experiment_small_grid_with_nice(tiny, tmp_path) -> None:
    spec = tmp_path / "exp.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "cli", "pool": str(GOOD / "pool.jsonl"), "settings": str(tiny["config"]),
        "targets": [{"name": "target", "query": str(GOOD / "query.jsonl"), "test": str(GOOD / "test.jsonl")}],
        "representations": ["hidden", "nice"], "selectors": ["doubly_greedy"], "budgets": [4], "seeds": [0],
        "baselines": ["random"], "overrides": ["nice.metric=tests.fixtures.rewards:length", "nice.samples=3",
                                               "nice.max_new_tokens=4"]}))
    out = tmp_path / "exp"
    proc = winnow("experiment", str(spec), "--out", str(out), "--model", str(tiny["model"]), "--budget", "25%",
                  home=tiny["home"])
    assert "3 cells (3 computed)" in proc.stdout
    import pandas as pd

    df = pd.read_csv(out / "results.csv")  # NICE is a representation of the grid like the others
    assert sorted(df.method) == ["hidden/doubly_greedy", "nice/doubly_greedy", "random"] and set(df.budget_size) == {5}
    assert (out / "report.md").is_file()
    # Any cell leaves through `winnow export`: the rows its subset file names, and its adapter with a card.
    dest = tmp_path / "cell-export"
    proc = winnow("export", str(out), "--arm", "target:hidden/doubly_greedy:5:0", "--out", str(dest),
                  home=tiny["home"])
    from winnow.data.loaders import load_records

    cell = next(json.loads(p.read_text()) for p in (out / "cells").glob("*.json")
                if json.loads(p.read_text())["cell"]["method"] == "hidden/doubly_greedy")
    exported = [r.messages for r in load_records(dest / "data.jsonl").records]
    assert exported == [r.messages for r in load_records(cell["subset"]).records] and len(exported) == 5
    assert f"adapter for {tiny['model']}" in proc.stdout and (dest / "adapter" / "adapter_config.json").is_file()
    assert "hidden/doubly_greedy" in (dest / "README.md").read_text()
    wrong = winnow("export", str(out), "--arm", "selected", "--out", str(dest), home=tiny["home"], expect=2)
    assert "TARGET:METHOD:BUDGET:SEED" in wrong.stderr and "target:random:5:0" in wrong.stderr


def test_demo_data_from_the_evals_wheel(tmp_path) -> None:
    wheels = sorted((ROOT / ".cache" / "wheels").glob("evals-*.whl"))
    if not wheels:
        pytest.skip("no evals wheel in .cache/wheels: `make test` downloads it (pip download --no-deps evals)")
    out = tmp_path / "demo"
    proc = winnow("demo-data", "--wheel", str(wheels[-1]), "--out", str(out), "--per-source", "2", home=tmp_path / "h")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary == {"target": "tomi", "pool": 58, "query": 16, "test": 60}
    assert len((out / "pool.jsonl").read_text().splitlines()) == 58
    bad = winnow("demo-data", "--wheel", str(tmp_path / "missing.whl"), "--out", str(out), home=tmp_path / "h", expect=2)
    assert "missing.whl" in bad.stderr and "Traceback" not in bad.stderr
    # Another target, taken from the default pool: it is held out of it (28 pool evals remain).
    other = tmp_path / "heavier"
    proc = winnow("demo-data", "--wheel", str(wheels[-1]), "--out", str(other), "--per-source", "2", "--target",
                  "which_is_heavier/which_is_heavier.jsonl", home=tmp_path / "h")
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"target": "which_is_heavier", "pool": 56, "query": 16,
                                                                 "test": 60}
    assert "which_is_heavier" not in (other / "pool.jsonl").read_text()
    split = tmp_path / "heavier-val"  # a validation split carved from the test items by id, for an experiment
    proc = winnow("demo-data", "--wheel", str(wheels[-1]), "--out", str(split), "--per-source", "2", "--target",
                  "which_is_heavier/which_is_heavier.jsonl", "--val-share", "0.5", home=tmp_path / "h")
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    ids = {n: {json.loads(line)["id"] for line in (split / f"{n}.jsonl").read_text().splitlines()} for n in ("val", "test")}
    assert got["val"] == len(ids["val"]) and got["test"] == len(ids["test"]) and not ids["val"] & ids["test"]
    assert got["val"] + got["test"] == 60 and 20 <= got["val"] <= 40  # by id: about half, never a shared item
    bad = winnow("demo-data", "--wheel", str(wheels[-1]), "--out", str(other), "--target", "nope/x.jsonl",
                 home=tmp_path / "h", expect=2)
    assert "--target: no eval file 'nope/x.jsonl'" in bad.stderr and "Traceback" not in bad.stderr
    # A sibling of the target added to the pool (NICE's demo: largest_country held out, compare-countries-area in).
    sib = tmp_path / "countries"
    proc = winnow("demo-data", "--wheel", str(wheels[-1]), "--out", str(sib), "--per-source", "2", "--target",
                  "largest_country/samples.jsonl", "--add", "compare-countries-area/samples.jsonl", home=tmp_path / "h")
    assert json.loads(proc.stdout.strip().splitlines()[-1])["pool"] == 58  # 28 default evals (target out) + 1
    assert '"source": "compare-countries-area"' in (sib / "pool.jsonl").read_text()
    bad = winnow("demo-data", "--wheel", str(wheels[-1]), "--out", str(sib), "--add", "nope/y.jsonl",
                 home=tmp_path / "h", expect=2)
    assert "--add: no eval file 'nope/y.jsonl'" in bad.stderr and "Traceback" not in bad.stderr
    # Other items of the target in the pool (in-domain data): never a query or test item, same held-out splits.
    plain, inp = tmp_path / "word", tmp_path / "word-in"
    for folder, extra in ((plain, ()), (inp, ("--target-in-pool", "5"))):
        proc = winnow("demo-data", "--wheel", str(wheels[-1]), "--out", str(folder), "--per-source", "2", "--target",
                      "last_word_nth/samples.jsonl", *extra, home=tmp_path / "h")
    assert json.loads(proc.stdout.strip().splitlines()[-1])["pool"] == 29 * 2 + 5
    for split in ("query.jsonl", "test.jsonl"):
        assert (plain / split).read_text() == (inp / split).read_text()
    held = {json.dumps(json.loads(line)["messages"]) for split in ("query.jsonl", "test.jsonl")
            for line in (inp / split).read_text().splitlines()}
    own = [json.loads(line) for line in (inp / "pool.jsonl").read_text().splitlines()
           if json.loads(line)["source"] == "last_word_nth"]
    assert len(own) == 5 and not any(json.dumps(r["messages"]) in held for r in own)
    bad = winnow("demo-data", "--wheel", str(wheels[-1]), "--out", str(inp), "--target", "last_word_nth/samples.jsonl",
                 "--target-in-pool", "500", home=tmp_path / "h", expect=2)
    assert "--target-in-pool asks for 500" in bad.stderr and "Traceback" not in bad.stderr


def test_prepare_model_converts_the_default_once(tmp_path) -> None:
    home = tmp_path / "home"
    first = winnow("prepare-model", home=home)
    path = Path(first.stdout.strip().splitlines()[-1])
    assert (path / "config.json").is_file() and list(path.glob("*.safetensors"))
    t0 = time.time()
    second = winnow("prepare-model", home=home)
    assert second.stdout.strip().splitlines()[-1] == str(path) and time.time() - t0 < 30
    bad = winnow("prepare-model", "--model", str(tmp_path / "nowhere"), home=home, expect=2)
    assert "does not exist" in bad.stderr and "Traceback" not in bad.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(what: str, check, proc: subprocess.Popen, log: Path, timeout_s: float = 120):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        assert proc.poll() is None, f"{what}: exited {proc.returncode}\n{log.read_text()[-4000:]}"
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise AssertionError(f"{what}: not within {timeout_s:.0f} s\n{log.read_text()[-4000:]}")


def _ctrl_c_default() -> None:
    """A process started in the background by a non-interactive shell (CI launched with `&`) inherits SIGINT
    ignored, and Python then keeps it ignored: reset it in the child, as a terminal's foreground job has it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_server_and_serve_start_answer_and_stop(tmp_path) -> None:
    """`winnow server` answers on loopback; `winnow serve` registers every deployment of infra/prefect.yaml on
    it; both stop cleanly on Ctrl-C (SIGINT). The inbox's every-minute schedule is dropped from the copy served
    here, so no scheduled run is starting when Ctrl-C lands (a run cut in its start-up logs a traceback)."""
    declared = yaml.safe_load((ROOT / "infra" / "prefect.yaml").read_text())
    for d in declared["deployments"]:
        d["schedules"] = [s for s in d.get("schedules", []) if "interval" not in s]
    served = tmp_path / "prefect.yaml"
    served.write_text(yaml.safe_dump(declared))
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**{k: v for k, v in os.environ.items() if k not in ("PREFECT_HOME", "PREFECT_API_URL")},
           "WINNOW_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    server_log, serve_log = tmp_path / "server.log", tmp_path / "serve.log"
    server = subprocess.Popen([WINNOW, "server", "--port", str(port)], cwd=ROOT, env=env, preexec_fn=_ctrl_c_default,
                              stdout=server_log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    serve = None
    try:
        _wait_for("winnow server", lambda: httpx.get(f"{api}/health", timeout=2).status_code == 200, server, server_log)
        serve = subprocess.Popen([WINNOW, "serve", "--deployments", str(served)], cwd=ROOT, preexec_fn=_ctrl_c_default, env={**env, "PREFECT_API_URL": api},
                                 stdout=serve_log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
        names = {d["name"] for d in declared["deployments"]}
        _wait_for("deployments registered", lambda: names <= {
            d["name"] for d in httpx.post(f"{api}/deployments/filter", json={}, timeout=5).json()}, serve, serve_log)
        # Ctrl-C only once the runner polls (the server marks polled deployments READY): one that lands while
        # Prefect's runner is still starting can be swallowed by its start-up, and serve then runs on.
        _wait_for("serve polling", lambda: names <= {
            d["name"] for d in httpx.post(f"{api}/deployments/filter", json={}, timeout=5).json()
            if d.get("status") == "READY"}, serve, serve_log)
        os.killpg(serve.pid, signal.SIGINT)
        try:
            serve.wait(30)
        except subprocess.TimeoutExpired:  # seen only in CI runs: SIGTERM, which Prefect's runner handles itself
            warnings.warn("winnow serve did not stop within 30 s of SIGINT; stopping it with SIGTERM")
            os.killpg(serve.pid, signal.SIGTERM)
        assert serve.wait(60) in (0, 130, -signal.SIGINT, -signal.SIGTERM), serve_log.read_text()[-3000:]
        os.killpg(server.pid, signal.SIGINT)
        assert server.wait(60) in (0, 130, -signal.SIGINT), server_log.read_text()[-3000:]
        assert "Traceback" not in serve_log.read_text() + server_log.read_text()
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{api}/health", timeout=2)
    finally:
        for p in (serve, server):
            if p is not None and p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    no_server = winnow("serve", home=tmp_path / "home", expect=2)
    assert "PREFECT_API_URL is not set" in no_server.stderr


GROUPS = {"mixture": ("search", "fit", "rank", "suggest"), "runs": ("show",)}  # command groups: their subcommands have their own help


def _readme_commands() -> list[tuple[str, set[str]]]:
    """(command, flags) for every ``winnow ...`` line of the code blocks of the README and of every docs page."""
    text = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
                     if p.name != "cli.md")
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#")[0].strip()
            if line.startswith("winnow "):
                words = line.split()
                command = " ".join(words[1:3]) if len(words) > 2 and words[2] in GROUPS.get(words[1], ()) else words[1]
                found.append((command, set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", line))))
    return found


def test_every_command_has_help_and_the_readme_agrees_with_it(tmp_path) -> None:
    top = winnow("--help", home=tmp_path)
    commands = re.findall(r"^│ ([a-z][a-z-]+) ", top.stdout, flags=re.M)
    expected = {"curate", "compare", "select", "mixture", "feedback", "ingest", "retrain", "serve", "server",
                "experiment", "demo-data", "prepare-model", "plan", "tune", "export", "runs"}
    assert expected <= set(commands), top.stdout
    helps = {c: winnow(*c.split(), "--help", home=tmp_path, env={"COLUMNS": "200"}).stdout
             for c in [*commands, *(f"{g} {sub}" for g, subs in GROUPS.items() for sub in subs)]}
    readme = _readme_commands()
    assert {c for c, _ in readme} >= {"curate", "compare", "select", "mixture", "feedback", "ingest", "retrain",
                                      "experiment", "plan"}
    for command, flags in readme:
        assert command in helps, f"README or docs show `winnow {command}`, which does not exist"
        for flag in flags:
            assert flag in helps[command], f"README or docs show `winnow {command} {flag}`, which --help does not list"
