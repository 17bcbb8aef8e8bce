"""Settings classes of the miniature phase notebooks that test_runner.py and test_ablation.py run through the
real runner (the real phases are exercised in test_end_to_end.py). A mini notebook's first cell imports its class
from here; the tests point ``mathcode.run.params.SETTINGS`` at the same classes."""
from __future__ import annotations

from dataclasses import dataclass

from mathcode.settings import PhaseSettings, setting

NOTEBOOKS = {"data": "01_data_sampling.ipynb", "translation": "02_translation.ipynb",
             "pretraining": "03_qlora_pretraining.ipynb", "evaluation": "04_evaluation.ipynb"}


def _runner_class(phase):
    @dataclass(frozen=True)
    class Mini(PhaseSettings):
        PHASE = phase
        NOTEBOOK = NOTEBOOKS[phase]
        n_rows: int = setting(3, "rows to write")
        fail: bool = setting(False, "raise on purpose")
    Mini.__name__ = Mini.__qualname__ = f"Runner_{phase}"
    return Mini


RUNNER = {p: _runner_class(p) for p in NOTEBOOKS}


@dataclass(frozen=True)
class AblationData(PhaseSettings):
    PHASE, NOTEBOOK = "data", NOTEBOOKS["data"]
    n_docs: int = setting(6, "documents")


@dataclass(frozen=True)
class AblationTranslation(PhaseSettings):
    PHASE, NOTEBOOK = "translation", NOTEBOOKS["translation"]
    n_blocks: int = setting(2, "translated documents")


@dataclass(frozen=True)
class AblationPretraining(PhaseSettings):
    PHASE, NOTEBOOK = "pretraining", NOTEBOOKS["pretraining"]
    mixture: str = setting("basic+translated", "mixture")
    corpus_files: list = setting([], "files")


@dataclass(frozen=True)
class AblationEvaluation(PhaseSettings):
    PHASE, NOTEBOOK = "evaluation", NOTEBOOKS["evaluation"]
    adapter: str = setting("", "adapter")
    include_base: bool = setting(True, "base too")
    n_items: int = setting(8, "items")


ABLATION = {"data": AblationData, "translation": AblationTranslation, "pretraining": AblationPretraining,
            "evaluation": AblationEvaluation}
