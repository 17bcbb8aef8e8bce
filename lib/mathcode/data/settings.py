"""Phase 1 settings: which sources, which filters, how large a corpus — checked once, before any document is read.

The notebook's ``parameters`` cell is written from this class (``DataSettings.parameters_cell()``); the source
specs are checked against the kinds and embedded corpora this kit can read, so a misspelt source fails here, not
after the classifier has trained.
"""
from __future__ import annotations

from dataclasses import dataclass

from mathcode import embedded
from mathcode.data.sources import KINDS, SourceError, parse_spec
from mathcode.settings import FRACTION, NONNEG, POS, Members, Num, PhaseSettings, SettingsError, Weights, setting

QUALITY_FILTERS = ("length", "symbols", "repetition")


class SourceSpecs:
    """A list of source specs KIND:TARGET that this kit can read (embedded names must exist)."""

    def __init__(self, nonempty: bool = False, why: str = ""):
        self.nonempty, self.why = nonempty, why

    def check(self, key: str, v):
        if not isinstance(v, (list, tuple)):
            return
        if self.nonempty and not v:
            raise SettingsError(f"{key}: must not be empty — {self.why}")
        for spec in v:
            try:
                s = parse_spec(spec)
            except SourceError as e:
                raise SettingsError(f"{key}: {e}") from None
            if s.kind == "embedded" and s.target not in embedded.EMBEDDED:
                raise SettingsError(f"{key}: unknown embedded source {spec!r}; write one of "
                                    + ", ".join(f"'embedded:{n}'" for n in embedded.EMBEDDED))

    def allowed(self) -> tuple:
        return tuple(f"embedded:{n}" for n in embedded.EMBEDDED) + tuple(f"{k}:..." for k in KINDS if k != "embedded")


@dataclass(frozen=True)
class DataSettings(PhaseSettings):
    PHASE = "data"
    NOTEBOOK = "01_data_sampling.ipynb"

    run_dir: str = setting("outputs/lab", "run folder (relative paths are taken from the project root); this phase "
                                          "writes run_dir/01_data/")
    model: str = setting("embedded:smollm2-135m-instruct",
                         "target model: its tokenizer counts the tokens of budgets and the funnel")
    seed: int = setting(0, "seed for generators, splits, fastText and mixture sampling", NONNEG)
    device: str = setting("auto", "common parameter; phase 1 runs on CPU only")
    sources: list = setting(
        ["embedded:champ_solutions", "embedded:champ_concepts", "embedded:rg_gsm_symbolic", "embedded:rg_math_drills",
         "embedded:math_docstrings_seed", "embedded:math_package_docstrings"],
        "corpus sources: embedded:NAME, hub:OWNER/NAME[@config][#field], jsonl:PATH[#field], parquet:PATH[#field], "
        "folder:PATH",
        SourceSpecs(nonempty=True, why="phase 1 needs at least one source, e.g. ['embedded:champ_solutions'] or "
                                       "['jsonl:data/my.jsonl#text']"))
    max_docs_per_source: int = setting(300, "at most this many documents read from each source (streams stop early)",
                                       Num(1, why="at least one document per source"))
    classifier_positives: list = setting(
        ["embedded:champ_solutions", "embedded:champ_concepts", "embedded:rg_gsm_symbolic", "embedded:rg_math_drills",
         "embedded:math_docstrings_seed"],
        "seed positive sources (trusted math) for the fastText classifier", SourceSpecs())
    classifier_negatives: list = setting(["embedded:stdlib_prose"], "non-math sources used only as classifier "
                                         "negatives (never in the corpus)", SourceSpecs())
    max_negatives: int = setting(800, "at most this many negative documents", NONNEG)
    classify_sources: list = setting(["embedded:math_package_docstrings"], "pool sources that must pass the "
                                     "classifier (the paper's recall step); [] skips the classifier", SourceSpecs())
    classifier_model: str = setting("", "path to a saved classifier .bin to reuse instead of training two rounds "
                                        "(empty: train here)")
    classifier_threshold: float = setting(0.5, "keep pool documents with P(math) at or above this (round-2 model)",
                                          FRACTION)
    confident_threshold: float = setting(0.9, "round-1 pool documents with P(math) at or above this become extra "
                                              "positives for round 2", FRACTION)
    classifier_holdout: float = setting(0.2, "fraction of seed positives/negatives held out for precision/recall/AUC",
                                        Num(0, 1, lo_open=True, hi_open=True, why="a share of the seed documents"))
    classifier_epochs: int = setting(15, "fastText epochs", POS)
    quality_filters: list = setting(list(QUALITY_FILTERS), "heuristics to apply, in order (any subset)",
                                    Members(QUALITY_FILTERS))
    min_chars: int = setting(50, "length filter: drop shorter documents", NONNEG)
    max_chars: int = setting(20000, "length filter: drop longer documents", POS)
    min_symbol_ratio: float = setting(0.0, "symbol filter: minimum math-symbol density (0 turns it off)", FRACTION)
    max_symbol_ratio: float = setting(0.8, "symbol filter: maximum math-symbol density (tables / garbage above)",
                                      FRACTION)
    max_dup_lines: float = setting(0.3, "repetition filter: max fraction of duplicated lines", FRACTION)
    max_top_trigram: float = setting(0.3, "repetition filter: max share of the most frequent word 3-gram (docs of "
                                          "50+ words)", FRACTION)
    dedup: bool = setting(True, "run MinHash-LSH near-duplicate removal")
    dedup_threshold: float = setting(0.8, "Jaccard similarity above which two documents are near-duplicates",
                                     Num(0, 1, lo_open=True, why="a Jaccard similarity"))
    dedup_num_perm: int = setting(128, "MinHash permutations", Num(2))
    dedup_shingle: int = setting(5, "words per shingle", POS)
    decontam_benchmarks: str | list = setting(
        "default", '"default" (../shared/data/benchmarks, else the Hub when online), a folder, a list of files / '
                   '"hub:NAME", or "none"', type="Union[str, list]")
    decontam_ngram: int = setting(13, "n-gram length for overlap decontamination (the paper uses 13)", POS)
    token_budget: int = setting(180000, "total tokens in the final corpus, split by source_weights (0 keeps "
                                        "everything)", Num(0, why="0 keeps everything"))
    source_weights: dict = setting(
        {"champ_solutions": 3, "math_docstrings_seed": 2, "math_package_docstrings": 2, "rg_gsm_symbolic": 1,
         "rg_math_drills": 0.8, "champ_concepts": 0.25},
        "relative weight per source name (missing sources weigh 1, weight 0 drops a source)", Weights())
    source_budgets: dict = setting({}, "explicit tokens per source name; overrides token_budget/source_weights when "
                                       "non-empty", Weights(integer=True))

    @classmethod
    def check_together(cls, values: dict, prefix: str = "") -> None:
        lo, hi = values.get("min_chars"), values.get("max_chars")
        if isinstance(lo, int) and isinstance(hi, int) and lo >= hi:
            raise SettingsError(f"{prefix}max_chars: {hi} must be above min_chars ({lo}), or every document is dropped")
