"""Formatting: the chat template formats, only response tokens carry labels, truncation is as documented."""
from __future__ import annotations

from winnow.data.formatting import IGNORE, MIN_PROMPT_TOKENS, collate, encode
from winnow.data.records import parse_record
from winnow.models.loading import load_tokenizer


def test_labels_cover_exactly_the_response(tiny_model_path: str) -> None:
    tok = load_tokenizer(tiny_model_path)
    rec = parse_record({"prompt": "what is two plus two", "response": "four", "source": "s", "task": "t"})
    enc = encode(tok, rec, 128)
    n_prompt = sum(1 for x in enc.labels if x == IGNORE)
    assert tok.decode(enc.input_ids[n_prompt:]) == "four<|im_end|>\n"
    assert "what is two plus two" in tok.decode(enc.input_ids[:n_prompt])
    assert enc.labels[n_prompt:] == enc.input_ids[n_prompt:] and not enc.truncated


def test_pad_equal_to_eos_never_masks_the_response_end(tiny_model_path: str) -> None:
    tok = load_tokenizer(tiny_model_path)
    assert tok.pad_token_id == tok.eos_token_id  # as in SmolLM2
    recs = [parse_record({"prompt": "q" * k, "response": "yes", "source": "s", "task": "t"}) for k in (1, 9)]
    batch = collate([encode(tok, r, 64) for r in recs], tok.pad_token_id)
    for i in range(2):
        labelled = batch["labels"][i][batch["labels"][i] != IGNORE].tolist()
        assert tok.eos_token_id in labelled  # <|im_end|> of the response is learnt even though it is the pad id


def test_truncation_cuts_prompt_left_then_response_right(tiny_model_path: str) -> None:
    tok = load_tokenizer(tiny_model_path)
    long_prompt = parse_record({"prompt": "count the letters " * 40 + "END", "response": "no",
                                "source": "s", "task": "t"})
    enc = encode(tok, long_prompt, 32)
    assert len(enc.input_ids) == 32 and enc.truncated
    assert tok.decode(enc.input_ids).rstrip().endswith("no<|im_end|>")
    long_resp = parse_record({"prompt": "p", "response": "yes " * 100, "source": "s", "task": "t"})
    enc = encode(tok, long_resp, 32)
    assert len(enc.input_ids) <= 32 and enc.truncated
    assert sum(1 for x in enc.labels if x == IGNORE) == MIN_PROMPT_TOKENS


def test_open_ended_response_has_no_end_of_turn(tiny_model_path: str) -> None:
    """A sample cut at the length limit never produced the end-of-turn token: it is not in its labels."""
    tok = load_tokenizer(tiny_model_path)
    rec = parse_record({"prompt": "what is two plus two", "response": "four", "source": "s", "task": "t"})
    closed, cut = encode(tok, rec, 64), encode(tok, rec, 64, open_ended=True)
    closed_labels = [t for t in closed.labels if t != IGNORE]
    cut_labels = [t for t in cut.labels if t != IGNORE]
    assert tok.eos_token_id in closed_labels and tok.eos_token_id not in cut_labels
    assert closed_labels[:len(cut_labels)] == cut_labels and tok.decode(cut_labels) == "four"
