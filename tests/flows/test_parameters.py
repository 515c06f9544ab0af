"""Every flow's ``settings`` parameter is typed, so a deployment's run form in the Prefect UI shows each section
and key (with its type and default) instead of one free-form JSON box, and a mapping a caller passes still
reaches the run as only the keys it set (the rest falls back to the environment, as before)."""
from __future__ import annotations

import pytest
from prefect.utilities.callables import parameter_schema


@pytest.mark.parametrize("module, name", [("flows.curate", "curate"), ("flows.compare", "compare"),
                                          ("flows.experiment", "experiment"), ("flows.tune", "tune"),
                                          ("flows.mixture", "mixture"), ("flows.retrain", "retrain")])
def test_the_run_form_has_the_settings_schema(module: str, name: str) -> None:
    import importlib

    fn = getattr(importlib.import_module(module), name)
    schema = parameter_schema(fn).model_dump()
    refs = str(schema["properties"]["settings"])
    assert "#/definitions/WinnowSettings" in refs, refs
    budget = schema["definitions"]["SelectionSettings"]["properties"]["budget"]
    assert "default" in budget and schema["definitions"]["FeatureSettings"]["properties"]["proj_dim"]["type"] == "integer"


def test_a_validated_mapping_keeps_only_what_the_caller_set() -> None:
    from flows.run import partial_settings
    from winnow.settings import WinnowSettings

    given = {"model": {"max_length": 64}, "selection": {"budget": 5}}
    assert partial_settings(WinnowSettings.model_validate(given)) == given
    assert partial_settings(None) == {} and partial_settings(given) == given
