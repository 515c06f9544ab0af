"""Demo data from the OpenAI Evals registry (MIT) shipped inside the ``evals`` wheel on PyPI.

The wheel is read as a zip archive, never installed. Each eval sample is a chat (``input``) with a gold
answer (``ideal``); it becomes a record whose last turn is the assistant's gold answer, with the eval's
name as ``source`` and ``task``. One eval is held out of the pool as the target and split into a query
set (the few examples selection may look at) and a test set.
"""
from __future__ import annotations

import json
import random
import zipfile
from pathlib import Path
from typing import Any

from winnow.data.loaders import write_jsonl
from winnow.errors import ConfigError, DataFormatError

REGISTRY = "evals/registry/data/"

# The demo's target: ToMi (theory of mind), whose answer is the container an object is, was, or is believed to be
# in ("bathtub", "treasure_chest"): no two-class label, and no constant answer wins (the most common answer is 15 %
# of items). The sarcasm target (answers 0/1) used before was won by answering "1".
DEFAULT_TARGET = "theory_of_mind/tomi/test.jsonl"
# Short-answer evals of many formats. hitom (Hi-ToM) tells the same kind of story and asks where an object is, so a
# selector has something real to find; socialiqa shares the theme but is multiple choice; russian_sarcasm shares
# the old sarcasm target's instruction; most share neither.
DEFAULT_POOL = (
    "russian_sarcasm/samples.jsonl", "portuguese-sarcasm/samples.jsonl", "which_is_heavier/which_is_heavier.jsonl",
    "born_first/born_first.jsonl", "food/samples.jsonl", "regex-match/samples.jsonl", "quartz/samples.jsonl",
    "theory_of_mind/socialiqa/test.jsonl", "anagrams/samples.jsonl", "largest_country/samples.jsonl",
    "number_reading/number_reading.jsonl", "first-letters/samples.jsonl",
    "positive-binary-operations/samples.jsonl", "logical_counting/samples.jsonl", "polish-lexicon/samples.jsonl",
    "belarusian_lexicon/samples.jsonl", "determinant/samples.jsonl", "sort_numeric/samples.jsonl",
    "next-val-series/next-val-series.jsonl", "syllables_long_words/long_word_samples.jsonl",
    "connect4/samples.jsonl", "bigrams/samples.jsonl", "rot13/rot13.jsonl", "swap-words/samples.jsonl",
    "japanese_approval/samples.jsonl", "hebrew_same_noun_gender/samples.jsonl", "afrikaans-lexicon/samples.jsonl",
    "crontab/samples.jsonl", "theory_of_mind/hitom/hitom.jsonl",
)


def eval_name(member: str) -> str:
    """The eval's own folder: ``theory_of_mind/socialiqa/test.jsonl`` -> ``socialiqa``."""
    return member.split("/")[-2]


def sample_to_record(sample: Any) -> dict[str, Any] | None:
    """An eval sample as a Winnow record, or None when it has no chat input or no string answer."""
    if not isinstance(sample, dict) or not isinstance(sample.get("input"), list):
        return None
    ideal = sample.get("ideal")
    if isinstance(ideal, list):
        ideal = ideal[0] if ideal and isinstance(ideal[0], str) else None
    if not isinstance(ideal, str) or not ideal.strip():
        return None
    turns = [{"role": m.get("role"), "content": m.get("content")} for m in sample["input"] if isinstance(m, dict)]
    if not turns or any(t["role"] not in ("system", "user", "assistant") or not isinstance(t["content"], str)
                        for t in turns):
        return None
    if turns[-1]["role"] == "assistant":  # an input that already ends with an answer is not a prompt
        return None
    return {"messages": turns + [{"role": "assistant", "content": ideal}]}


def read_eval(zf: zipfile.ZipFile, member: str) -> tuple[list[dict[str, Any]], int]:
    """Convertible samples of one eval file, and how many were skipped as unusable upstream."""
    out, skipped = [], 0
    for line in zf.read(REGISTRY + member).decode("utf-8").splitlines():
        if not line.strip():
            continue
        rec = sample_to_record(json.loads(line))
        if rec is None:
            skipped += 1
            continue
        name = eval_name(member)
        out.append({**rec, "source": name, "task": name})
    return out, skipped


def build_demo_data(wheel: str | Path, out_dir: str | Path, *, target: str = DEFAULT_TARGET,
                    pool: tuple[str, ...] = DEFAULT_POOL, per_source: int = 10, n_query: int = 16,
                    n_test: int = 60, seed: int = 0, target_in_pool: int = 0) -> dict[str, Any]:
    """Write ``pool.jsonl``, ``query.jsonl`` and ``test.jsonl`` under ``out_dir``; returns a summary.

    ``target`` is any eval file of the registry (``which_is_heavier/which_is_heavier.jsonl``); its query and test
    items are always held out of the pool, so a target taken from the default pool leaves 28 pool evals.
    ``target_in_pool`` puts that many *other* items of the target eval into the pool: the in-domain data a team's
    pool often holds, which a selector should find (random finds its share of them)."""
    pool = tuple(p for p in pool if p != target)
    out_dir = Path(out_dir)
    rng = random.Random(seed)
    summary: dict[str, Any] = {"wheel": str(wheel), "target": eval_name(target), "sources": {}, "skipped": {}}
    try:
        zf = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as e:
        raise DataFormatError(str(wheel), f"cannot open the evals wheel: {e}") from None
    with zf:
        pool_rows: list[dict[str, Any]] = []
        for member in pool:
            try:
                rows, skipped = read_eval(zf, member)
            except KeyError:
                raise ConfigError(f"--add: no eval file {member!r} in {wheel}") from None
            picked = rng.sample(rows, min(per_source, len(rows)))
            pool_rows += picked
            summary["sources"][eval_name(member)] = len(picked)
            summary["skipped"][eval_name(member)] = skipped
        try:
            target_rows, _ = read_eval(zf, target)
        except KeyError:
            raise ConfigError(f"--target: no eval file {target!r} in {wheel} (e.g. {DEFAULT_TARGET})") from None
    if len(target_rows) < n_query + n_test:
        raise DataFormatError(str(wheel), f"target {target} has {len(target_rows)} usable samples, need {n_query + n_test}")
    held = rng.sample(target_rows, n_query + n_test)
    if target_in_pool > 0:  # drawn after the held-out items, so those stay the same with or without this option
        seen = {json.dumps(r["messages"]) for r in held}  # an eval may repeat an item: no copy of a held one
        rest = []
        for r in target_rows:
            if (key := json.dumps(r["messages"])) not in seen:
                seen.add(key)
                rest.append(r)
        if len(rest) < target_in_pool:
            raise DataFormatError(str(wheel), f"target {target} has {len(rest)} items beyond the query and test "
                                              f"splits, --target-in-pool asks for {target_in_pool}")
        pool_rows += rng.sample(rest, target_in_pool)
        summary["sources"][eval_name(target)] = target_in_pool
    rng.shuffle(pool_rows)
    write_jsonl(out_dir / "pool.jsonl", pool_rows)
    write_jsonl(out_dir / "query.jsonl", held[:n_query])
    write_jsonl(out_dir / "test.jsonl", held[n_query:])
    summary.update(pool=len(pool_rows), query=n_query, test=n_test)
    (out_dir / "SOURCE.json").write_text(json.dumps(summary, indent=1))
    return summary
