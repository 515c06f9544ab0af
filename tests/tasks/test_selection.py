"""The selection task's decontamination guard embeds the test items once per process, not once per arm."""
from __future__ import annotations

import json

import numpy as np

from tasks import selection
from winnow.selection.decontaminate import prepare
from winnow.settings import DecontaminationSettings


def test_guard_embeds_the_test_items_once_for_every_arm(tmp_path, monkeypatch) -> None:
    calls: list[int] = []

    def fake_embed(name, texts, device="cpu", **kw):
        calls.append(len(texts))
        return np.stack([np.eye(8, dtype=np.float32)[hash(t) % 8] * 2.0 for t in texts])

    monkeypatch.setattr("winnow.features.embeddings.embed_texts", fake_embed)
    selection._unit_embeddings.cache_clear()
    test = tmp_path / "test.jsonl"
    test.write_text("".join(json.dumps({"prompt": f"item {i}", "response": "y", "source": "t"}) + "\n" for i in range(3)))
    settings = DecontaminationSettings(embedder="fake")
    first, second = (selection.guard_for(str(test), settings) for _ in range(2))  # two arms
    a, b = prepare(first).vectors, prepare(second).vectors
    assert calls == [3] and np.array_equal(a, b) and np.allclose(np.linalg.norm(a, axis=1), 1.0)
    first.embed(["candidate one", "candidate two"])  # candidates are embedded every time
    assert calls == [3, 2]
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"prompt": "another item", "response": "y", "source": "t"}) + "\n")
    third = selection.guard_for(str(other), settings)
    prepare(third)  # another test set is its own key
    assert calls == [3, 2, 1]
