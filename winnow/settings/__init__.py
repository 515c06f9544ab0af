"""Typed settings, one frozen model per phase, passed explicitly.

The library never reads environment variables: flows and the CLI build one ``WinnowSettings`` (from a YAML
file plus ``key=value`` overrides) and hand the relevant part to each function. Unknown keys, wrong types and
out-of-range values are all collected into a single ``ConfigError`` before any model is loaded.
"""
import json
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError, model_validator

from winnow.errors import ConfigError
from winnow.settings.sections import (DataSettings, DecontaminationSettings, FeatureSettings, FileLayout,
                                      LoraSettings, ModelSettings, PrefilterSettings, SelectionSettings,
                                      TrainSettings, ValidationSettings, WarmupSettings, _Frozen)
from winnow.settings.studies import EvalSettings, MixtureSettings, NiceSettings, ParamSpec, TuneSettings

__all__ = ["DataSettings", "DecontaminationSettings", "EvalSettings", "FeatureSettings", "FileLayout",
           "LoraSettings", "MixtureSettings", "ModelSettings", "NiceSettings", "ParamSpec", "PrefilterSettings",
           "SelectionSettings", "TrainSettings", "TuneSettings", "ValidationSettings", "WarmupSettings", "WinnowSettings",
           "build_settings", "describe_settings", "load_settings", "lookup", "read_yaml_mapping"]


class WinnowSettings(_Frozen):
    data: DataSettings = DataSettings()
    model: ModelSettings = ModelSettings()
    warmup: WarmupSettings = WarmupSettings()
    features: FeatureSettings = FeatureSettings()
    selection: SelectionSettings = SelectionSettings()
    finetune: TrainSettings = TrainSettings(epochs=3, lr=3e-4)
    finetune_lora: LoraSettings = LoraSettings()
    eval: EvalSettings = EvalSettings()
    nice: NiceSettings = NiceSettings()
    mixture: MixtureSettings = MixtureSettings()
    tune: TuneSettings = TuneSettings()
    validation: ValidationSettings = ValidationSettings()

    @model_validator(mode="before")
    @classmethod
    def _one_reward_config(cls, data: Any) -> Any:
        """The reward model and judge are configured once (under ``nice``) for selecting and evaluating alike;
        ``eval.*`` names another only when the evaluation should use a different one. Filled in before
        validation, so the settings stay immutable once built."""
        if not isinstance(data, dict):
            return data
        nice, ev = data.get("nice") or {}, data.get("eval") or {}
        nice = nice.model_dump() if isinstance(nice, BaseModel) else nice
        ev = ev.model_dump() if isinstance(ev, BaseModel) else ev
        if not isinstance(nice, dict) or not isinstance(ev, dict):
            return data  # the section's own validation says what is wrong
        fill = {k: nice[k] for k in ("reward_model", "judge_url", "judge_model") if nice.get(k) and not ev.get(k)}
        return {**data, "eval": {**ev, **fill}} if fill else data


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    node = tree
    *parents, leaf = key.split(".")
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{key}: {p!r} is not a section")
    node[leaf] = value


def build_settings(base: dict[str, Any] | None = None, overrides: list[str] | None = None) -> WinnowSettings:
    """Build settings from a dict (e.g. parsed YAML) plus ``section.key=value`` overrides.

    Values in overrides are parsed as YAML scalars, so ``features.proj_dim=1024`` is an int. Every problem
    is reported in one ``ConfigError``.
    """
    tree: dict[str, Any] = json.loads(json.dumps(base or {}))
    problems: list[str] = []
    for item in overrides or []:
        if "=" not in item:
            problems.append(f"override {item!r} is not of the form key=value")
            continue
        key, raw = item.split("=", 1)
        try:
            _set_dotted(tree, key.strip(), yaml.safe_load(raw))
        except ConfigError as e:
            problems.extend(e.problems)
    if problems:
        raise ConfigError(problems)
    try:
        return WinnowSettings.model_validate(tree)
    except ValidationError as e:
        raise ConfigError([_problem(err) for err in e.errors()]) from None


def _problem(err: Any) -> str:
    """One validation error as a line naming the key; an unknown key gets the nearest known ones."""
    key = ".".join(map(str, err["loc"]))
    if err["type"] == "extra_forbidden":
        import difflib

        leaves = [r["key"] for r in describe_settings()]
        depth = key.count(".")  # a key is compared with the keys and sections of its own depth
        known = sorted({".".join(k.split(".")[:depth + 1]) for k in leaves if k.count(".") >= depth})
        near = difflib.get_close_matches(key, known, n=2, cutoff=0.6)
        hint = f"; did you mean {' or '.join(near)}?" if near else "; `winnow settings` lists every key"
        return f"{key}: no such setting{hint}"
    return f"{key}: {err['msg'].removeprefix('Value error, ')} (got {err.get('input')!r})"


def describe_settings(model: type[BaseModel] = None, prefix: str = "") -> list[dict[str, Any]]:  # type: ignore[assignment]
    """Every leaf setting: its ``--set`` key, type, default and help (what `winnow settings` prints)."""
    import typing

    rows = []
    for name, f in (model or WinnowSettings).model_fields.items():
        key = f"{prefix}{name}"
        kind = f.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            rows += describe_settings(kind, key + ".")
            continue
        default = f.default_factory() if f.default_factory else f.default
        shown = getattr(kind, "__name__", None) if typing.get_origin(kind) is None else str(kind)
        rows.append({"key": key, "type": (shown or str(kind)).replace("typing.", ""),
                     "default": json.dumps(default, default=str), "help": f.description or ""})
    return rows


def lookup(cfg: WinnowSettings, key: str) -> Any:
    """A resolved setting by its dotted key (a section gives its mapping)."""
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, BaseModel) or part not in type(node).model_fields:
            raise ConfigError(_problem({"loc": tuple(key.split(".")), "type": "extra_forbidden"}))
        node = getattr(node, part)
    return node.model_dump(mode="json") if isinstance(node, BaseModel) else node


def load_settings(path: str | None, overrides: list[str] | None = None,
                  defaults: dict[str, Any] | None = None) -> WinnowSettings:
    """Settings in one order: built-in defaults < ``defaults`` (the environment's, e.g. ``WINNOW_MODEL``) < the
    YAML file < ``overrides`` (``--set``, then a command's own flags, appended last by the CLI)."""
    top = read_yaml_mapping(path, "settings") if path else {}
    if isinstance(top.get("settings"), dict) and set(top) <= {"settings", "pool", "query", "test", "val"}:
        top = top["settings"]  # a run folder's settings.yaml: its data paths beside the settings it ran with
    tree = _merge(defaults or {}, top)
    return build_settings(tree, overrides)


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``, section by section."""
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_yaml_mapping(path: str, what: str) -> dict[str, Any]:
    """A YAML file whose top level is a mapping, or a ConfigError naming the file and the problem."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise ConfigError(f"{what} file {path} does not exist") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return data
