"""Answer normalisation and exact match, the metric the demo target is scored with."""
from __future__ import annotations

import re
import string

_PUNCT = string.punctuation + "“”‘’«»"


def normalize_answer(text: str) -> str:
    """Lower-case, trim surrounding quotes/punctuation and collapse white space: "Paris." == "paris"."""
    text = re.sub(r"\s+", " ", text.strip().lower())
    return text.strip(_PUNCT + " ")


def exact_match(prediction: str, gold: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(gold)
