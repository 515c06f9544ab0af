"""How one answer is scored against its gold answer, as the graders of the papers' benchmarks score it.

- ``exact_match``: normalised strings equal ("Paris." == "paris");
- ``numeric_match``: the final number (GSM8K's ``####`` marker first, thousands separators, a trailing period);
- ``token_f1``: SQuAD / TydiQA token F1 (lower case, punctuation and articles removed, bag-of-tokens overlap);
- ``includes`` / ``fuzzy_match``: OpenAI Evals' ``Includes`` (ignore_case) and ``FuzzyMatch`` graders, which score
  210 of its evals (the demo's source), so a target taken from there is scored by its own grader;
- ``pass_at_k``: the unbiased estimator of Chen et al. (2021) from n samples of which c pass.
"""
from __future__ import annotations

import math
import re
import string
from collections import Counter

_PUNCT = string.punctuation + "“”‘’«»"
# A number as graders read one: thousands separators only in groups of three ("1,234"), a decimal part only
# with digits after the point (so the period that ends "= 102." is not part of it).
NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE]-?\d+)?")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Lower-case, trim surrounding quotes/punctuation and collapse white space: "Paris." == "paris"."""
    text = re.sub(r"\s+", " ", text.strip().lower())
    return text.strip(_PUNCT + " ")


def exact_match(prediction: str, gold: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(gold)


def final_number(text: str) -> float | None:
    """The number a GSM8K-style grader reads: the one after a ``####`` marker if there is one, else the last
    number of the text ("To add 61 and 41 ... = 102." -> 102.0). None when the text has no number."""
    marked = text.rsplit("####", 1)[1] if "####" in text else text
    found = NUMBER.findall(marked) or NUMBER.findall(text)
    return float(found[-1].replace(",", "")) if found else None


def numeric_match(prediction: str, gold: str, tol: float = 1e-6) -> bool:
    """The prediction's final number equals the gold answer's (a response cut before its result is scored as
    what it says: its last number)."""
    got, want = final_number(prediction), final_number(gold)
    return got is not None and want is not None and math.isclose(got, want, rel_tol=tol, abs_tol=tol)


def squad_normalize(text: str) -> str:
    """SQuAD v1.1's normalisation (also TydiQA GoldP's): lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(_PUNCT))
    return " ".join(_ARTICLES.sub(" ", text).split())


def token_f1(prediction: str, gold: str) -> float:
    """Harmonic mean of token precision and recall over the normalised bags of tokens; two empty answers
    agree (1.0), one empty answer scores 0."""
    p, g = squad_normalize(prediction).split(), squad_normalize(gold).split()
    if not p or not g:
        return float(p == g)
    common = sum((Counter(p) & Counter(g)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def includes(prediction: str, gold: str) -> bool:
    """OpenAI Evals' ``Includes`` grader with ``ignore_case``: the gold answer appears anywhere in the response
    ("The largest is Russia." includes "russia"). It rewards a verbose answer that names the gold among others,
    as the grader does."""
    want = gold.strip().lower()
    return bool(want) and want in prediction.lower()


def fuzzy_match(prediction: str, gold: str) -> bool:
    """OpenAI Evals' ``FuzzyMatch`` grader: after its normalisation (the SQuAD one) either text contains the
    other; an empty side matches only an empty side. Containment is by characters, as the grader's (so "us"
    matches "Russia"): a target scored so should be read with its zero-shot and random baselines beside it."""
    p, g = squad_normalize(prediction), squad_normalize(gold)
    if not p or not g:
        return p == g
    return p in g or g in p


def pass_at_k(n: int, c: int, k: int) -> float:
    """P(at least one of k samples drawn without replacement from n passes | c of n pass) = 1 − C(n−c, k)/C(n, k),
    as a stable product (Chen et al. 2021). Needs n ≥ k."""
    if not 0 <= c <= n or k < 1 or n < k:
        raise ValueError(f"pass@{k} needs 0 <= c <= n and n >= k (got n={n}, c={c})")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))
