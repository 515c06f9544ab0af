"""The settings of what studies a target: NICE's rewards, the evaluation, the mixture search, the tuning study."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from winnow.budget import Budget
from winnow.data.records import METRIC_PATTERN  # the metric names a setting or a test record may give

from winnow.settings.sections import TrainSettings, _Frozen


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
    score: Literal["metric", "neg_loss", "planted_recall"] = Field(
        "metric", description="eval.metric on the validation split, minus its response loss, or planted_recall: "
                              "the recall of the validation rows planted in the pool within the budget (no "
                              "fine-tune per trial; the space may then vary only representation and selection.*, "
                              "never the budget); the best is still confirmed by fine-tunes on test")
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

    @model_validator(mode="after")
    def _planted_space(self) -> "TuneSettings":
        if self.score == "planted_recall":
            bad = [k for k in self.space if k == "selection.budget" or k.startswith(("finetune.", "finetune_lora."))]
            if bad:
                raise ValueError(f"tune.space: {', '.join(bad)} cannot be tuned by planted_recall (it trains nothing, "
                                 "and recall rises with the budget); fix them, or use tune.score=metric")
        return self
