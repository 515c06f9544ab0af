"""The steps every flow is composed of, by name: what each makes, the settings slice it reads, the code that
computes it, its key and its typed result. Names and tuples only (a naming module for ``winnow.keys``).

Why a registry: curate, compare, experiment, tune, mixture and retrain run the same chain (data → warm-up →
features → select → fine-tune → evaluate → report), and when each flow wired it by hand they drifted: two
fine-tune keys, settings read two ways, a selector edit that re-featurised everything. Here a step is declared
once (torchtune's recipe components, datatrove's pipeline steps); ``tasks`` binds each to its Prefect task and
cache (``tasks.step_task``), ``flows.steps`` runs them, and the library computes them. A step receives its
slice of the settings, never the whole ``WinnowSettings``.

``Step.key`` is the one artifact key (``winnow.keys.artifact_key``) with the step's name and code: folders,
tables and Prefect's task caches all come from it, so "what invalidates what" is answered here:

- a step's artifact changes when its inputs' content, its settings slice, a model's content or its code changes;
- its code is its modules and what they import, up to the naming modules (settings, registries, errors);
- a selection adds its selector's module and a featurisation its representation's, no other.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from winnow.keys import artifact_key
from winnow.registry import representation_code, selector_code


@dataclass(frozen=True)
class Step:
    name: str
    makes: str
    settings: tuple[str, ...]  # the sections (dotted paths) of WinnowSettings the step reads
    code: tuple[str, ...]  # the library modules that compute it
    result: str  # the name of its result type in winnow.results (or a builtin)

    def slice(self, cfg: Any) -> dict[str, Any]:
        """The step's settings, section by section: all a task of this step is given."""
        out = {}
        for path in self.settings:
            node = cfg
            for part in path.split("."):
                node = getattr(node, part)
            out[path] = node
        return out

    def key(self, *, inputs: Any, settings: Any = None, models: tuple[Any, ...] | list[Any] = (),
            code: tuple[str, ...] = ()) -> str:
        """This step's artifact key: ``inputs`` (content), ``settings`` (its slice), ``models`` (paths or
        ModelRefs, fingerprinted) and the code version of the step's modules plus ``code``."""
        return artifact_key(self.name, inputs=inputs, settings=settings, models=models, code=(*self.code, *code))


STEPS: dict[str, Step] = {s.name: s for s in (
    Step("data", "a pool or query table in the store (rows merged by id), or a validated file",
         ("data",), ("winnow.store.ingest",), "DataSet"),
    Step("warmup", "LESS warm-up checkpoints on a slice of the pool", ("model", "warmup"),
         ("winnow.training.runs",), "Warmup"),
    Step("features", "a feature table per representation and role, shard by shard", ("model", "features"),
         ("winnow.features.shards",), "FeatureTables"),
    Step("nice", "NICE query directions (policy gradient of the target metric)", ("model", "features", "nice"),
         ("winnow.nice.pipeline",), "FeatureTables"),
    Step("select", "an ordering of the pool and the budget's prefix as a subset file", ("selection",),
         ("winnow.selection.subset",), "Subset"),
    Step("finetune", "a LoRA adapter trained on a subset", ("model", "finetune", "finetune_lora"),
         ("winnow.training.runs",), "str"),
    Step("evaluate", "metrics and per-example predictions on a held-out split", ("model", "eval"),
         ("winnow.evaluation.evaluate",), "Evaluation"),
    Step("affinity", "a domain proxy's scores of every domain's held-out data (TaskPGM's affinity)", ("model",),
         ("winnow.mixture.affinity",), "list"),
    Step("harness", "lm-evaluation-harness scores of one model", ("model", "eval"),
         ("winnow.evaluation.harness",), "dict"),
    Step("checked_finetune", "a tuning trial's fine-tune, scored on validation after each epoch",
         ("model", "finetune", "finetune_lora", "eval", "tune"), ("winnow.tune.trial",), "dict"),
    Step("mixture_trial", "a mixture built, fine-tuned and scored on validation (DUET's round)",
         ("model", "finetune", "finetune_lora", "eval", "mixture"),
         ("winnow.mixture.build", "winnow.training.runs", "winnow.evaluation.evaluate"), "float"),
    Step("cell", "one experiment cell: select, fine-tune, evaluate", ("model", "warmup", "features",
         "selection.decontaminate", "finetune", "finetune_lora", "eval"),
         ("winnow.experiment.grid", "winnow.selection.subset", "winnow.training.runs", "winnow.evaluation.evaluate"),
         "dict"),
    Step("probe", "the planner's per-token rates on this machine", ("model", "warmup", "features", "selection",
         "finetune", "finetune_lora", "eval"), ("winnow.plan",), "Rates"),
    Step("report", "the run's report: markdown, tables and plots", (), ("winnow.reports",), "str"),
    Step("mixture_fit", "surrogates of a mixture history, cross-validated, the best one kept", (),
         ("winnow.mixture.history", "winnow.mixture.surrogates"), "dict"),
)}


def featurise_code(representation: str) -> tuple[str, ...]:
    """The code behind one representation's feature tables: the shard runner and that representation only."""
    return representation_code(representation)


def selection_code(selector: str, representation: str = "gradients") -> tuple[str, ...]:
    """The code behind a subset: the selection machinery, its selector, and the features it ordered."""
    return (*STEPS["select"].code, *selector_code(selector), *featurise_code(representation))
