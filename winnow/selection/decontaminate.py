"""Decontamination: leave out the candidates that copy a test item's *content*, never the target's own task.

Selecting what is most similar to a target's queries is exactly how copies of the target's *test* items get
into training, and the test score then measures memory. But every item of a templated task looks like every
other to a sentence embedder (whole-example cosine 0.93-0.98 between distinct True/False expressions), and
distinct items of a five-word vocabulary share their 5-grams: a guard built on either removed 59 and 60 of 60
legitimate in-domain items on third-party tasks. So an item is compared by its content only:

- **the template goes first**: the system turn (unless the item has no user turn), and every word 4-gram found in at least half of the test items
  of a task ("Evaluate the expression:", "How many fruits are in the list"), are removed from test items and
  candidates alike; what is left of the user turns is the item's *prompt content*, the last turn its answer.
- **long overlap** (GPT-3 and OLMo decontaminate on 13-grams, Llama 2 on 8-10-token spans): at least half of a
  test item's content tokens lie in 13-grams that the candidate also holds, in any of its turns.
- **near-exact match**: the test item's whole prompt content is a run of the candidate's, delimited by a
  sentence boundary, the template or an end on both sides (case, spaces and prose punctuation ignored;
  ``+ - * / = < >`` are content), and the answers match: a copy under any instruction. Delimited, because
  one short templated item is often a substring of another. A one-word edit of a short templated item is
  another item of the task, not a copy; of a long one, the 13-gram overlap finds it.
- **paraphrase**, a second signal only: the sentence embeddings of the two items' content (template removed,
  answer included) have cosine at least ``cosine_threshold`` and above the item's cosine to its nearest
  sibling (another test item of its task), the answers match, and the candidate holds the item's numbers and
  at least half of its *rare* words (those in at most a tenth of its task's items); never for a candidate
  that carries a test task's template, which reads as another item of that task (a copy of one keeps its
  content, and the lexical signals find it). An item of a small shared vocabulary has no rare word, and one
  that differs from a sibling in a slot is no paraphrase of it: neither is flagged.

Defaults are measured by ``bench/decontamination.py`` on the demo pool, on evals of the OpenAI Evals registry
and on generated templated tasks (``winnow.data.templated``): recall on copies and paraphrases, and the share
of distinct same-template items flagged.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

import numpy as np

from winnow.data.records import Record

# Words, and the symbols that carry meaning in arithmetic, logic and code; prose punctuation is dropped so a
# copy with its punctuation changed is still the same token sequence, but a sentence end (. ? ! : ; or a line
# break) is remembered as a boundary before the next token: a copy is a delimited run, not a substring.
_TOKEN = re.compile(r"\w+|[+\-*/=<>^%&|~#$@]|[.?!:;\n]")
_BOUNDARY = frozenset(".?!:;\n")
TEMPLATE_NGRAM = 4
SIGNALS = ("overlap", "near_exact", "paraphrase")


def tokens(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text.lower()) if t not in _BOUNDARY]


def tokens_and_bounds(text: str) -> tuple[list[str], list[bool]]:
    """The tokens of ``text`` and, for each, whether a sentence boundary (or the start) comes before it."""
    toks, bounds, cut = [], [], True
    for t in _TOKEN.findall(text.lower()):
        if t in _BOUNDARY:
            cut = True
            continue
        toks.append(t)
        bounds.append(cut)
        cut = False
    return toks, bounds


def item_text(record: Record) -> str:
    """What an item *is*: its user turns and response. The system turn is the task's instruction, shared by
    every item of a task, and would make all of them look alike to an embedding."""
    return "\n".join(content for role, content in record.messages if role != "system")


def _grams(toks: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)}


def find_template(test: list[Record], share: float) -> set[tuple[str, ...]]:
    """The word 4-grams in at least ``share`` of the test items of some task (tasks of four or more items):
    the phrasing every item of that task repeats. Counted per task, so a suite of several evals loses each
    one's template, and a content phrase that a tiny vocabulary repeats now and then stays content."""
    by_task: dict[str, list[Record]] = defaultdict(list)
    for r in test:
        by_task[r.task].append(r)
    template: set[tuple[str, ...]] = set()
    for items in by_task.values():
        if len(items) < 4:
            continue
        df = Counter(g for r in items for g in _grams(tokens(_prompt(r)), TEMPLATE_NGRAM))
        template |= {g for g, c in df.items() if c >= share * len(items)}
    return template


def _prompt(record: Record) -> str:
    """The user turns; the system turn only where there is none (an eval whose whole item is its system turn)."""
    turns = record.messages[:-1]
    return "\n".join(c for role, c in turns if role == "user") or "\n".join(c for _, c in turns)


def strip_template(toks: list[str], template: set[tuple[str, ...]],
                   bounds: list[bool] | None = None) -> tuple[list[str], list[bool]]:
    """``toks`` less every position covered by a template 4-gram (where the template was is a boundary); all of
    it when nothing would be left (an item that is only template is still matched verbatim)."""
    bounds = list(bounds) if bounds is not None else [i == 0 for i in range(len(toks))]
    if not template or len(toks) < TEMPLATE_NGRAM:
        return toks, bounds
    cut = np.zeros(len(toks), dtype=bool)
    for i in range(len(toks) - TEMPLATE_NGRAM + 1):
        if tuple(toks[i:i + TEMPLATE_NGRAM]) in template:
            cut[i:i + TEMPLATE_NGRAM] = True
    kept, kept_bounds, gap = [], [], False
    for t, b, c in zip(toks, bounds, cut):
        if c:
            gap = True
            continue
        kept.append(t)
        kept_bounds.append(b or gap)
        gap = False
    return (kept, kept_bounds) if kept else (toks, bounds)


@dataclass(frozen=True)
class Item:
    """The parts of an example the guard compares: its prompt content, its answer, all of its content (every
    turn, template removed: a copy may sit in a response) and its rare words."""

    id: str
    source: str
    task: str
    prompt: tuple[str, ...]
    bounds: tuple[bool, ...]  # a sentence boundary, template or the start before each prompt token
    answer: tuple[str, ...]
    content: tuple[str, ...]
    rare: frozenset[str] = field(default_factory=frozenset)
    templated: bool = False  # the prompt carried a test task's template (it reads as another item of that task)

    @property
    def numbers(self) -> frozenset[str]:
        """The numbers of the prompt: a paraphrase keeps them (``11 pounds`` is not ``5 pounds``)."""
        return frozenset(w for w in self.prompt if w.isdigit())

    def text(self) -> str:
        """What the paraphrase signal embeds: the content, never the instruction or the template."""
        return " ".join(self.prompt) + "\n" + " ".join(self.answer)


def as_item(record: Record, template: set[tuple[str, ...]]) -> Item:
    raw = tokens(_prompt(record))
    prompt, bounds = _stripped(_prompt(record), template)
    turns = [prompt] + [_stripped(c, template)[0] for role, c in record.messages if role == "assistant"]
    return Item(record.id, record.source, record.task, tuple(prompt), tuple(bounds), tuple(tokens(record.response)),
                tuple(t for turn in turns for t in turn + ["\n"]), templated=len(prompt) < len(raw))


def _stripped(text: str, template: set[tuple[str, ...]]) -> tuple[list[str], list[bool]]:
    toks, bounds = tokens_and_bounds(text)
    return strip_template(toks, template, bounds)


def with_rare_words(items: list[Item]) -> list[Item]:
    """Each test item with its rare words: prompt words in at most a tenth of its task's items (at least in
    one: a task of one item has only rare words)."""
    by_task: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        by_task[it.task].append(it)
    df = {task: Counter(w for it in its for w in set(it.prompt)) for task, its in by_task.items()}
    out = []
    for it in items:
        cut = max(1, int(0.1 * len(by_task[it.task])))
        rare = frozenset(w for w in it.prompt if df[it.task][w] <= cut and not w.isdigit() and len(w) > 2)
        out.append(Item(it.id, it.source, it.task, it.prompt, it.bounds, it.answer, it.content, rare, it.templated))
    return out


def answers_match(a: tuple[str, ...], b: tuple[str, ...], ratio: float) -> bool:
    """Equal answers (case and punctuation ignored); a long answer (five tokens or more) may differ a little."""
    if a == b:
        return True
    return min(len(a), len(b)) >= 5 and SequenceMatcher(None, a, b, autojunk=False).ratio() >= ratio


def overlap(test_item: Item, candidate_grams: set[tuple[str, ...]], n: int) -> float:
    """The share of the test item's prompt tokens covered by its n-grams that the candidate also holds (0 for
    an item shorter than n: long overlap is no test for short items; near-exact match is)."""
    toks = test_item.prompt
    if len(toks) < n:
        return 0.0
    covered = np.zeros(len(toks), dtype=bool)
    for i in range(len(toks) - n + 1):
        if tuple(toks[i:i + n]) in candidate_grams:
            covered[i:i + n] = True
    return float(covered.mean())


def copied(test_item: Item, candidate: Item, vocabulary: frozenset[str]) -> bool:
    """Whether the test item's whole prompt content is a delimited run of the candidate's: a copy under any
    instruction, with any case, spacing or prose punctuation. Delimited on each side by a sentence boundary,
    the template, an end, or a word outside the content ``vocabulary`` of the item's task (an instruction's),
    because one short templated item is often a substring of another: ``False or True`` of ``not False or
    True``."""
    t, c = test_item.prompt, candidate.prompt
    if not t or len(t) > len(c) or not set(t) <= set(c):
        return False
    n = len(t)
    for i in range(len(c) - n + 1):
        if c[i:i + n] != t:
            continue
        left = candidate.bounds[i] or c[i - 1] not in vocabulary
        right = i + n == len(c) or candidate.bounds[i + n] or c[i + n] not in vocabulary
        if left and right:
            return True
    return False


@dataclass(frozen=True)
class Guard:
    """What a subset is checked against, and how (defaults: ``DecontaminationSettings``). ``embed`` maps texts
    to unit vectors (None: no paraphrase signal); ``exclude`` False keeps contaminated examples but lists them."""

    test: list[Record]
    n: int = 13
    overlap_threshold: float = 0.5
    answer_ratio: float = 0.8
    cosine_threshold: float = 0.9
    template_share: float = 0.5
    embed: Callable[[list[str]], np.ndarray] | None = None
    exclude: bool = True
    warn_share: float = 0.2

    def rule(self) -> str:
        return (f"{self.n}-gram overlap >= {self.overlap_threshold} of a test item's content, or its whole "
                "content copied with the same answer"
                + (f", or a paraphrase (content cosine >= {self.cosine_threshold}, same answer, its rare words)"
                   if self.embed is not None else ""))


@dataclass(frozen=True)
class Prepared:
    """The test side, computed once per guard: items, their template, their n-gram index and embeddings."""

    items: list[Item]
    template: set[tuple[str, ...]]
    index: dict[tuple[str, ...], list[int]]
    vectors: np.ndarray | None
    tasks: frozenset[str]
    vocabulary: dict[str, frozenset[str]]  # per test task, the words of its items' prompt content
    sibling: np.ndarray  # per test item, its highest cosine to another item of its task (-1: none, or no embedding)


def prepare(guard: Guard) -> Prepared:
    template = find_template(guard.test, guard.template_share)
    items = with_rare_words([as_item(r, template) for r in guard.test])
    index: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for j, it in enumerate(items):
        for g in _grams(list(it.prompt), guard.n):
            index[g].append(j)
    vectors = guard.embed([it.text() for it in items]) if guard.embed is not None and items else None
    vocabulary: dict[str, set[str]] = defaultdict(set)
    for it in items:
        vocabulary[it.task].update(it.prompt)
    sibling = np.full(len(items), -1.0, dtype=np.float32)
    if vectors is not None:
        same = vectors @ vectors.T
        tasks = np.array([it.task for it in items])
        same[tasks[:, None] != tasks[None, :]] = -1.0
        np.fill_diagonal(same, -1.0)
        sibling = same.max(axis=1)
    return Prepared(items, template, dict(index), vectors, frozenset(r.task for r in guard.test),
                    {task: frozenset(v) for task, v in vocabulary.items()}, sibling)


def find_contaminated(candidates: list[Record], guard: Guard, prepared: Prepared | None = None) -> list[dict[str, Any]]:
    """One entry per candidate: whether it copies a test item, by which signal, which item, and the scores."""
    prep = prepared or prepare(guard)
    cands = [as_item(r, prep.template) for r in candidates]
    cos = None
    if prep.vectors is not None and cands:
        cos = guard.embed([c.text() for c in cands]) @ prep.vectors.T
    out = []
    for i, c in enumerate(cands):
        grams = _grams(list(c.content), guard.n)
        hit: tuple[str, int, float] | None = None
        best_overlap = (0.0, None)
        for j in sorted({j for g in grams for j in prep.index.get(g, ())}):
            ov = overlap(prep.items[j], grams, guard.n)
            best_overlap = max(best_overlap, (ov, j), key=lambda x: x[0])
            if ov >= guard.overlap_threshold and hit is None:
                hit = ("overlap", j, ov)
        if hit is None:
            for j, t in enumerate(prep.items):
                if copied(t, c, prep.vocabulary[t.task]) and (c.prompt == t.prompt or answers_match(c.answer, t.answer, guard.answer_ratio)):
                    hit = ("near_exact", j, 1.0)
                    break
        best_cos = (None, None)
        if hit is None and cos is not None and not c.templated:
            row = cos[i]
            best_cos = (float(row.max()), int(row.argmax()))
            for j in (int(j) for j in np.argsort(-row)):
                t = prep.items[j]
                if row[j] < guard.cosine_threshold:
                    break
                words = set(c.prompt)
                if (t.rare and len(t.rare & words) >= 0.5 * len(t.rare) and t.numbers <= words
                        and row[j] > prep.sibling[j] and answers_match(c.answer, t.answer, guard.answer_ratio)):
                    hit = ("paraphrase", j, float(row[j]))
                    break
        entry = {"id": c.id, "source": c.source, "task": c.task, "contaminated": hit is not None,
                 "signal": hit[0] if hit else "", "test_id": prep.items[hit[1]].id if hit else None,
                 "overlap": round(best_overlap[0], 4),
                 "cosine": None if best_cos[0] is None else round(best_cos[0], 4)}
        if hit:
            entry["reason"] = {"overlap": f"{guard.n}-gram overlap {hit[2]:.2f}",
                               "near_exact": "its prompt content copied, same answer",
                               "paraphrase": f"content cosine {hit[2]:.3f}, same answer and rare words"}[hit[0]]
        else:
            entry["reason"] = ""
        out.append(entry)
    return out


def removal_report(checks: list[dict[str, Any]], target_tasks: frozenset[str], warn_share: float,
                   excluded: bool) -> tuple[dict[str, dict[str, int]], list[str]]:
    """Per source: candidates checked and flagged, by signal; and a warning for every source that lost more
    than ``warn_share`` of its checked candidates, and when most of the target's own in-domain items went."""
    by_source: dict[str, dict[str, int]] = {}
    for c in checks:
        row = by_source.setdefault(c["source"], {"checked": 0, "flagged": 0, **{s: 0 for s in SIGNALS}})
        row["checked"] += 1
        if c["contaminated"]:
            row["flagged"] += 1
            row[c["signal"]] += 1
    verb = "removed" if excluded else "flagged (kept)"
    warnings = [f"the guard {verb} {r['flagged']} of {r['checked']} checked candidates of source {s!r} "
                f"({r['flagged'] / r['checked']:.0%} > {warn_share:.0%})"
                for s, r in sorted(by_source.items()) if r["flagged"] >= 2 and r["flagged"] > warn_share * r["checked"]]
    own = [c for c in checks if c["task"] in target_tasks]
    gone = sum(c["contaminated"] for c in own)
    if own and gone > 0.5 * len(own):
        warnings.append(f"the guard {verb} {gone} of {len(own)} of the target's own in-domain candidates: check "
                        "that they are copies (<subset>_contaminated.jsonl), not the task")
    return by_source, warnings


def guarded_prefix(order: np.ndarray, k: int, read: Callable[[np.ndarray], list[Record]],
                   guard: Guard) -> tuple[np.ndarray, list[Record], dict[str, Any]]:
    """The first ``k`` entries of ``order`` that are clean, reading candidates chunk by chunk (a ranking is
    walked only as far as it must be), with a summary: how many were checked and flagged per source, each
    flagged one, and warnings when the guard takes a large share of a source or of the target's own data."""
    prep = prepare(guard)
    kept: list[int] = []
    recs: list[Record] = []
    checks: list[dict[str, Any]] = []
    pos = 0
    while len(kept) < k and pos < len(order):
        chunk = order[pos:pos + max(2 * (k - len(kept)), 16)]
        pos += len(chunk)
        batch = read(chunk)
        for idx, rec, check in zip(chunk, batch, find_contaminated(batch, guard, prep)):
            if len(kept) == k:
                break
            checks.append(check)
            if check["contaminated"] and guard.exclude:
                continue
            kept.append(int(idx))
            recs.append(rec)
    found = [c for c in checks if c["contaminated"]]
    by_source, warnings = removal_report(checks, prep.tasks, guard.warn_share, guard.exclude)
    summary = {"checked": len(checks), "test_items": len(guard.test), "contaminated": len(found),
               "excluded": len(found) if guard.exclude else 0, "found": found, "by_source": by_source,
               "warnings": warnings, "rule": guard.rule()}
    return np.asarray(kept, dtype=np.int64), recs, summary
