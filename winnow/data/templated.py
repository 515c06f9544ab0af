"""Generated templated tasks, and copies of their items: what a decontamination guard is measured on.

A guard tuned on a pool of varied evals passes that pool and then removes every item of a templated target
(True/False expressions, counting lists): distinct items of one template share their instruction, their
vocabulary and most of their n-grams. These generators make such tasks at any size and seed, and ``copies``
makes what a guard must catch: verbatim copies under another instruction, copies with case, spacing and
punctuation changed, one word replaced, two words dropped, and the instruction paraphrased around the same
content. ``bench/decontamination.py`` and the tests use both.
"""
from __future__ import annotations

import random
import re
from collections.abc import Callable

from winnow.data.records import Record

FRUITS = ("apple", "pear", "kiwi", "plum", "fig", "mango", "lemon", "cherry", "grape", "peach")
NAMES = ("Ava", "Ben", "Chloe", "Dan", "Emma", "Finn", "Grace", "Hugo", "Iris", "Jack", "Kate", "Liam")
THINGS = ("book", "lamp", "scarf", "kettle", "violin", "ticket", "basket", "compass", "candle", "wallet")
PLACES = ("market", "station", "library", "harbour", "bakery", "museum", "garden", "office")


def _bool_expr(rng: random.Random, depth: int = 0) -> str:
    if depth > 2 or rng.random() < 0.3:
        return rng.choice(("True", "False"))
    if rng.random() < 0.25:
        return "not " + _bool_expr(rng, depth + 1)
    return f"{_bool_expr(rng, depth + 1)} {rng.choice(('and', 'or'))} {_bool_expr(rng, depth + 1)}"


def boolean(rng: random.Random) -> tuple[str, str]:
    expr = _bool_expr(rng)
    while len(expr.split()) < 5:
        expr = _bool_expr(rng)
    return f"Evaluate the boolean expression and answer True or False: {expr}", str(eval(expr))  # noqa: S307


def arithmetic(rng: random.Random) -> tuple[str, str]:
    nums = [rng.randint(1, 20) for _ in range(rng.randint(3, 4))]
    ops = [rng.choice("+-*") for _ in nums[1:]]
    expr = str(nums[0]) + "".join(f" {o} {n}" for o, n in zip(ops, nums[1:]))
    return f"Compute the value of the expression. Answer with a number only. {expr}", str(eval(expr))  # noqa: S307


def counting(rng: random.Random) -> tuple[str, str]:
    items = [rng.choice(FRUITS) for _ in range(rng.randint(6, 10))]
    target = rng.choice(items)
    return (f"How many times does the word '{target}' appear in the list? {', '.join(items)}",
            str(items.count(target)))


def fill_blank(rng: random.Random) -> tuple[str, str]:
    a, b = rng.sample(NAMES, 2)
    thing, place = rng.choice(THINGS), rng.choice(PLACES)
    return (f"Fill in the blank with one word. {a} bought a {thing} at the {place} and later gave the ____ "
            f"to {b}.", thing)


TASKS: dict[str, Callable[[random.Random], tuple[str, str]]] = {
    "boolean": boolean, "arithmetic": arithmetic, "counting": counting, "fill_blank": fill_blank}


def templated_task(kind: str, n: int, seed: int = 0) -> list[Record]:
    """``n`` distinct items of one template (no two share their prompt)."""
    rng, seen, out = random.Random(f"{kind}-{seed}"), set(), []
    while len(out) < n:
        prompt, answer = TASKS[kind](rng)
        if prompt in seen:
            continue
        seen.add(prompt)
        out.append(Record(f"{kind}-{seed}-{len(out)}", (("user", prompt), ("assistant", answer)), kind, kind))
    return out


REWORDED = {"Evaluate the boolean expression and answer True or False:": "Is this expression True or False?",
            "Compute the value of the expression. Answer with a number only.": "What does this come to?",
            "How many times does the word": "Count how often",
            "Fill in the blank with one word.": "Which single word is missing?"}


def copies(record: Record, rng: random.Random) -> dict[str, Record]:
    """What a guard must catch, for one item: a verbatim copy under another instruction, the same with case,
    spacing and punctuation changed, one word replaced, two words dropped, and the instruction reworded."""
    prompt, answer, rid = record.messages[-2][1], record.response, record.id

    def rec(kind: str, text: str, system: str = "") -> Record:
        msgs = ((("system", system),) if system else ()) + (("user", text), ("assistant", answer))
        return Record(f"{kind}-{rid}", msgs, "planted", "planted")

    words = prompt.split()
    one = list(words)
    one[rng.randrange(len(one))] = "banana"
    two = list(words)
    for _ in range(min(2, len(two) - 1)):
        two.pop(rng.randrange(len(two)))
    reworded = prompt
    for old, new in REWORDED.items():
        reworded = reworded.replace(old, new)
    if reworded == prompt:  # free text: its question first, the rest after, under a new preamble
        sentences = [x.strip() for x in re.split(r"(?<=[.?!])\s+", prompt.strip()) if x.strip()]
        reworded = ("Question: " + sentences[-1] + " Context: " + " ".join(sentences[:-1]) if len(sentences) > 1
                    else "Please answer this: " + prompt + " Thanks")
    return {"verbatim": rec("verbatim", prompt, system="Answer the question."),
            "recased": rec("recased", "  " + prompt.upper().replace(",", " ;").replace("?", "!") + "  ..."),
            "one_word": rec("one_word", " ".join(one)),
            "two_dropped": rec("two_dropped", " ".join(two)),
            "reworded": rec("reworded", reworded)}
