"""Decontamination by outcome: copies of test items are caught however they are dressed, distinct items of the
same template never are, a guarded subset refills from the ranking, and a guard that takes a large share of a
source, or of the target's own data, says so."""
from __future__ import annotations

import random

import numpy as np
import pytest

from winnow.data.records import Record
from winnow.data.templated import TASKS, copies, templated_task
from winnow.selection.decontaminate import Guard, find_contaminated, guarded_prefix, prepare

SYSTEM = "Respond with only a 1 or 0 to signify if the user's message includes sarcasm, or not"
HEADLINES = ["protesters stage third day of demonstrations over the verdict", "landmarks turn blue for awareness day",
             "area man wins lifetime supply of regret after contest", "city council approves new budget for parks",
             "local dog elected mayor in landslide victory again", "scientists discover water on a distant moon"]


def _item(i: int, text: str, answer: str = "0", system: str = SYSTEM, task: str = "t") -> Record:
    msgs = ((("system", system),) if system else ()) + (("user", text), ("assistant", answer))
    return Record(f"r{i}", msgs, task, task)


TEST = [_item(i, h) for i, h in enumerate(HEADLINES)]


def flagged(cands: list[Record], guard: Guard) -> list[bool]:
    return [c["contaminated"] for c in find_contaminated(cands, guard)]


@pytest.mark.parametrize("kind", sorted(TASKS))
def test_distinct_items_of_one_template_are_never_flagged(kind: str) -> None:
    items = templated_task(kind, 400, seed=3)
    guard = Guard(items[:200])
    assert np.mean(flagged(items[200:], guard)) <= 0.01


@pytest.mark.parametrize("kind", sorted(TASKS))
def test_copies_of_templated_items_are_caught_however_dressed(kind: str) -> None:
    test = templated_task(kind, 100, seed=4)
    guard, rng = Guard(test), random.Random(0)
    made = [copies(r, rng) for r in test]
    for how in ("verbatim", "recased", "reworded"):
        assert np.mean(flagged([m[how] for m in made], guard)) >= 0.95, how


def test_free_text_copies_and_paraphrases_are_caught() -> None:
    rng = random.Random(0)
    made = [copies(r, rng) for r in TEST]
    guard = Guard(TEST)
    for how in ("verbatim", "recased"):
        assert all(flagged([m[how] for m in made], guard)), how
    checks = find_contaminated([made[0]["verbatim"], made[2]["recased"]], guard)
    assert [c["test_id"] for c in checks] == ["r0", "r2"]
    # the system prompt is every test item's: template, not content
    assert flagged([_item(13, "unrelated", system=SYSTEM), _item(12, "a different headline about the weather")],
                   guard) == [False, False]


def test_the_paraphrase_signal_needs_the_same_answer_and_the_item_s_rare_words() -> None:
    """A reordered, reworded headline shares no long run with its item; a (deterministic, bag-of-words)
    embedding sees it, and the same embedding never flags a sibling with another answer or other words."""
    vocab = sorted({w for h in HEADLINES for w in h.split()} | {"third", "day", "question", "here", "is", "the"})

    def embed(texts: list[str]) -> np.ndarray:
        v = np.array([[float(w in t.split()) for w in vocab] for t in texts]) + 1e-3
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    para = _item(20, "over the verdict, protesters stage a third day of demonstrations", system="")
    other_answer = _item(21, "over the verdict, protesters stage a third day of demonstrations", "1", system="")
    assert flagged([para], Guard(TEST)) == [False]
    assert flagged([para, other_answer], Guard(TEST, embed=embed, cosine_threshold=0.8)) == [True, False]


def test_templated_siblings_never_look_like_paraphrases() -> None:
    """Whole-example embeddings of distinct True/False expressions are nearly equal; without rare words the
    paraphrase signal does not apply, even with a constant embedding."""
    items = templated_task("boolean", 200, seed=5)
    guard = Guard(items[:100], embed=lambda texts: np.ones((len(texts), 4)) / 2.0, cosine_threshold=0.5)
    assert not any(flagged(items[100:], guard))
    assert not any(it.rare for it in prepare(guard).items)


def test_guarded_prefix_refills_from_the_ranking_and_can_keep_on_request() -> None:
    pool = [_item(100 + i, f"pool example number {i} talks about something else entirely", system="", task="p")
            for i in range(10)]
    pool[2] = _item(102, HEADLINES[1], system="", task="p")
    pool[5] = _item(105, HEADLINES[4], system="", task="p")
    order = np.arange(10)
    read = lambda idx: [pool[i] for i in idx]  # noqa: E731
    kept, recs, summary = guarded_prefix(order, 4, read, Guard(TEST))
    assert kept.tolist() == [0, 1, 3, 4] and [r.id for r in recs] == ["r100", "r101", "r103", "r104"]
    assert (summary["checked"], summary["contaminated"], summary["excluded"]) == (5, 1, 1)
    assert summary["by_source"]["p"] == {"checked": 5, "flagged": 1, "overlap": 0, "near_exact": 1, "paraphrase": 0}
    kept, _, summary = guarded_prefix(order, 10, read, Guard(TEST))
    assert 2 not in kept and 5 not in kept and len(kept) == 8 and summary["excluded"] == 2
    kept, _, summary = guarded_prefix(order, 4, read, Guard(TEST, exclude=False))
    assert kept.tolist() == [0, 1, 2, 3] and (summary["contaminated"], summary["excluded"]) == (1, 0)


def test_a_guard_that_takes_a_source_or_the_target_s_own_data_says_so() -> None:
    test = templated_task("counting", 20, seed=6)
    rng = random.Random(1)
    leaked = [Record(f"leak{i}", copies(r, rng)["verbatim"].messages, "scraped", "counting") for i, r in enumerate(test[:6])]
    clean = [Record(f"ok{i}", r.messages, "other", "other") for i, r in enumerate(templated_task("boolean", 10))]
    cands = leaked + clean
    _, _, summary = guarded_prefix(np.arange(len(cands)), len(cands), lambda idx: [cands[i] for i in idx], Guard(test))
    assert summary["by_source"]["scraped"]["flagged"] == 6 and summary["by_source"]["other"]["flagged"] == 0
    text = " | ".join(summary["warnings"])
    assert "source 'scraped'" in text and "in-domain" in text and "'other'" not in text
    _, _, quiet = guarded_prefix(np.arange(10), 10, lambda idx: [clean[i] for i in idx], Guard(test))
    assert quiet["warnings"] == []


PARAPHRASES = [  # (test item, a paraphrase of it, the answer): reworded by hand, no long run in common
    ("Which planet in our solar system has the most moons?",
     "In our solar system, which planet has the largest number of moons?", "Saturn"),
    ("Who wrote the novel Pride and Prejudice?", "Pride and Prejudice was written by which author?", "Jane Austen"),
    ("What is the boiling point of water at sea level in Celsius?",
     "At sea level, water boils at what temperature in degrees Celsius?", "100"),
    ("Sarah put the keys in the drawer and left the kitchen. Where will Sarah look for the keys?",
     "Sarah left the kitchen after placing the keys inside the drawer. Where is Sarah going to search for the keys?",
     "drawer"),
    ("Tom has 3 apples and buys 5 more. How many apples does Tom have now?",
     "After buying 5 more apples, Tom, who had 3, has how many apples?", "8"),
    ("What is the capital city of Australia?", "Name the capital of Australia.", "Canberra"),
    ("Which element has the chemical symbol Fe?", "The chemical symbol Fe stands for which element?", "iron"),
    ("In which year did the Berlin Wall fall?", "The Berlin Wall came down in what year?", "1989"),
    ("What is the largest ocean on Earth?", "Which ocean on Earth is the biggest?", "Pacific"),
    ("Who painted the Mona Lisa?", "The Mona Lisa was painted by whom?", "Leonardo da Vinci"),
    ("How many legs does a spider have?", "A spider has how many legs?", "8"),
    ("What gas do plants absorb from the atmosphere for photosynthesis?",
     "For photosynthesis, plants take in which gas from the air?", "carbon dioxide"),
]


@pytest.fixture(scope="module")
def sentence_embed():
    from winnow.features.embeddings import embed_texts

    def unit(texts: list[str]) -> np.ndarray:
        raw = embed_texts("default", texts, device="cpu")
        return raw / np.linalg.norm(raw, axis=1, keepdims=True)
    return unit


def test_the_default_embedder_catches_real_paraphrases_and_spares_templated_siblings(sentence_embed) -> None:
    """With the shipped sentence embedder: hand-written paraphrases are flagged (recall >= 0.95), and distinct
    items of four templates are not (false-positive rate <= 1 %), at the default settings."""
    test = [Record(f"t{i}", (("user", a), ("assistant", ans)), "qa", "qa") for i, (a, _, ans) in enumerate(PARAPHRASES)]
    para = [Record(f"p{i}", (("user", b), ("assistant", ans)), "p", "p") for i, (_, b, ans) in enumerate(PARAPHRASES)]
    checks = find_contaminated(para, Guard(test, embed=sentence_embed))
    assert np.mean([c["contaminated"] for c in checks]) >= 0.95
    assert [c["test_id"] for c in checks if c["contaminated"]] == [f"t{i}" for i in range(len(test))
                                                                   if checks[i]["contaminated"]]
    swapped = [Record(f"w{i}", (("user", b), ("assistant", "no idea")), "p", "p") for i, (_, b, _) in enumerate(PARAPHRASES)]
    assert not any(flagged(swapped, Guard(test, embed=sentence_embed)))  # another answer: not a copy
    rates = []
    for kind in sorted(TASKS):
        items = templated_task(kind, 160, seed=7)
        rates += flagged(items[80:], Guard(items[:80], embed=sentence_embed))
    assert np.mean(rates) <= 0.01
