"""A curation run described once: the data, the steps it goes through, and the subsets ("arms") it trains.

A recipe is data (torchtune's recipes, datatrove's pipeline): a flow *builds* one and hands it to the runner
(``flows.recipe.run_recipe``), which runs the registered steps of ``winnow.steps`` for it on the task runner.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from winnow.budget import Budget
from winnow.errors import ConfigError
from winnow.evaluation.rewards import needs_label
from winnow.registry import canonical_representation, canonical_selector
from winnow.settings import WinnowSettings


class Arm(BaseModel):
    """One subset to select and train: a representation × selector × budget × seed (budget as in
    ``winnow.budget``: int = count, float = share). ``train_seed`` seeds its fine-tune (default: the settings')."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    representation: str = "gradients"
    selector: str = "round_robin"
    budget: Budget = 0.05
    seed: int = 0
    train_seed: int | None = None

    @field_validator("representation")
    @classmethod
    def _representation(cls, v: str) -> str:
        return canonical_representation(v)

    @field_validator("selector")
    @classmethod
    def _selector(cls, v: str) -> str:
        return canonical_selector(v)


class Recipe(BaseModel):
    """Data + settings + arms. ``query`` may be empty (mixture, which sees its target only through ``test``);
    ``evaluate_base`` adds the untrained model to the evaluation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pool: str
    query: str = ""
    test: str = ""
    settings: WinnowSettings = Field(default_factory=WinnowSettings)
    arms: tuple[Arm, ...] = ()
    evaluate_base: bool = True

    def needs_query_table(self) -> bool:
        """Whether an arm reads the query set's own features (every representation but NICE's, which samples
        from the query prompts instead, so a prompts-only query set serves it)."""
        return any(a.representation != "nice" for a in self.arms)

    def representations(self) -> list[str]:
        """Representations the arms need, in first-use order (``random`` needs none of its own: it is drawn
        over the rows of the first representation's pool table, so it costs nothing extra)."""
        return list(dict.fromkeys(a.representation for a in self.arms)) or ["gradients"]


def curation(pool: str, query: str, test: str, settings: WinnowSettings, unlabelled: int = 0) -> Recipe:
    """What ``winnow curate`` runs: the configured selector, random at the same budget and seed (the baseline
    every claim is measured against) and, when ``nice.metric`` is set, NICE with the same selector.

    ``unlabelled`` queries (prompts without a response) leave no loss gradient to select by: such a query set
    serves only a label-free metric, and the run is NICE against random (distances in NICE's space)."""
    sel = settings.selection
    nice = Arm(name="nice", representation="nice", selector=sel.selector, budget=sel.budget, seed=sel.seed)
    if unlabelled:
        metric = settings.nice.metric
        if not metric or needs_label(metric):
            raise ConfigError(f"{query}: {unlabelled} queries have no response; loss-gradient selection"
                              + (f" and the {metric} metric need" if metric else " needs") + " one. Add responses, "
                              "or select for a label-free metric (--target-metric code, reward-model, judge, or a "
                              "module:fn taking (prompt, response))")
        arms = [nice, Arm(name="random", representation="nice", selector="random", budget=sel.budget, seed=sel.seed)]
        return Recipe(pool=pool, query=query, test=test, settings=settings, arms=tuple(arms))
    arms = [Arm(name="selected", selector=sel.selector, budget=sel.budget, seed=sel.seed),
            Arm(name="random", selector="random", budget=sel.budget, seed=sel.seed)]
    if settings.nice.metric:
        arms.append(nice)
    return Recipe(pool=pool, query=query, test=test, settings=settings, arms=tuple(arms))


def retraining(pool: str, query: str, test: str, settings: WinnowSettings) -> Recipe:
    """What a retrain runs: one arm, the configured selector (the previous adapter is its baseline)."""
    sel = settings.selection
    return Recipe(pool=pool, query=query, test=test, settings=settings,
                  arms=(Arm(name="new", selector=sel.selector, budget=sel.budget, seed=sel.seed),))
