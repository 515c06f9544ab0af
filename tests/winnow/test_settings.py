"""Settings: every problem reported at once; overrides typed as YAML scalars."""
from __future__ import annotations

import pytest

from winnow.errors import ConfigError
from winnow.keys import digest
from winnow.settings import build_settings, load_settings


def test_overrides_are_typed() -> None:
    s = build_settings({"features": {"proj_dim": 512}}, ["features.seed=3", "selection.budget=0.1", "model.name=x"])
    assert (s.features.proj_dim, s.features.seed, s.selection.budget, s.model.name) == (512, 3, 0.1, "x")


def test_all_problems_in_one_error() -> None:
    with pytest.raises(ConfigError) as e:
        build_settings({"features": {"proj_dim": 2, "nope": 1}, "warmup": {"fraction": 3}}, ["bad", "model.device=tpu"])
    assert len(e.value.problems) == 1 and "key=value" in e.value.problems[0]  # parse problems first
    with pytest.raises(ConfigError) as e:
        build_settings({"features": {"proj_dim": 2, "nope": 1}, "warmup": {"fraction": 3}}, ["model.device=tpu"])
    text = str(e.value)
    for needle in ("features.proj_dim", "features.nope", "warmup.fraction", "model.device"):
        assert needle in text


def test_settings_file_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(str(tmp_path / "none.yaml"))
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(str(tmp_path / "list.yaml"))


def test_hash_is_stable_and_sensitive() -> None:
    assert digest(build_settings()) == digest(build_settings())
    assert digest(build_settings()) != digest(build_settings(overrides=["features.seed=1"]))


def test_finetune_model_is_for_the_fine_tunes_only() -> None:
    assert build_settings(None, ["finetune.model=some/big-model"]).finetune.model == "some/big-model"
    with pytest.raises(ConfigError, match="the warm-up trains the selection model"):
        build_settings(None, ["warmup.train.model=some/big-model"])


def test_a_run_folders_settings_yaml_is_a_config_that_repeats_the_run(tmp_path) -> None:
    """curate writes ``{pool, query, test, settings}``; ``--config`` of that file gives back the same settings."""
    import yaml

    ran = build_settings(None, ["selection.budget=17", "finetune.lr=0.003", "selection.selector=doubly_greedy"])
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump({"pool": "p.jsonl", "query": "q.jsonl", "test": "t.jsonl",
                                    "settings": ran.model_dump(mode="json")}, sort_keys=False))
    again = load_settings(str(path))
    assert again == ran and digest(again) == digest(ran)
