"""The typed configuration of `evalkit dpo` (one TOML/YAML/JSON file).

Every field is documented once, by the attribute docstring under it (pydantic turns those into
field descriptions). Defaults are SAGA's published settings (the SAGA paper) where SAGA publishes
one; the others are marked "evalkit default" and say why. Unknown keys are an error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from evalkit.errors import BadInput

__all__ = ["DPOLoopConfig", "load_config"]

_SHARED = "nob_sentences"
_EVAL_FILE = f"{_SHARED}/ud_no_bokmaal-test.sentences.txt"
_TRAIN_FILE = f"{_SHARED}/ud_no_bokmaal-dev.sentences.txt"


def _default_file(data: Any, file: str) -> Any:
    """Let a config set `prompts = {n = 100}` without repeating the default file."""
    if isinstance(data, dict) and isinstance(data.get("prompts"), dict):
        data = {**data, "prompts": {"file": file, **data["prompts"]}}
    return data


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True,
                              protected_namespaces=())


class PromptSource(_Strict):
    """Where prompts come from: the first words of sentences in a one-sentence-per-line file."""

    file: str
    """Path of the sentence file, relative to the data mirror unless absolute."""
    n: int = Field(200, ge=1)
    """How many prompts (distinct) to take."""
    words: int = Field(3, ge=1)
    """Prompt = the sentence's first `words` words (SAGA cards prompt like "Norsk er")."""
    min_words: int = Field(6, ge=1)
    """Sentences shorter than this are skipped (their first words are nearly the whole sentence)."""
    shuffle_seed: int | None = None
    """Shuffle the eligible sentences with this seed before taking `n`; None keeps file order."""


class OracleSettings(_Strict):
    """The two parsers: one is the training reward, the other only evaluates (anti-hacking)."""

    train: str = "spacy-nob"
    """Training oracle (SAGA: spaCy), an `evalkit.registry.ORACLES` name."""
    heldout: str = "stanza-nob"
    """Held-out evaluator (SAGA: Stanza); never used for training."""
    train_options: dict[str, Any] = {}
    """Keyword arguments for the training oracle's constructor."""
    heldout_options: dict[str, Any] = {}
    """Keyword arguments for the held-out evaluator's constructor."""
    mattr_weight: float = Field(0.2, ge=0.0, le=1.0)
    """w in r = (1 − w)·q + w·MATTR (SAGA's diversity weight 0.2)."""
    mattr_window: int = Field(20, ge=1)
    """MATTR window in words."""
    first_sentence_only: bool = False
    """Judge only the first sentence (SAGA's optional mode); default: all must pass."""

    @model_validator(mode="after")
    def _distinct(self) -> OracleSettings:
        if self.train == self.heldout and self.train_options == self.heldout_options:
            raise ValueError(f"the held-out evaluator is the training oracle ({self.train!r}); "
                             "the reward-hacking gap needs a different parser for heldout")
        return self


class EvalSettings(_Strict):
    """How parse success is measured before and after (SAGA cards: T 0.8, 60 new tokens)."""

    prompts: PromptSource = PromptSource(file=_EVAL_FILE)
    """Held-out evaluation prompts (UD Bokmål test); must differ from the training prompts."""
    seeds: list[int] = [0, 1, 2]
    """Sampling seeds; PS is reported per seed and as their mean (SAGA reports ≥ 3 seeds)."""
    temperature: float = Field(0.8, ge=0.0)
    """Sampling temperature of the evaluation generations."""
    max_new_tokens: int = Field(60, ge=1)
    """New tokens per evaluation generation."""
    saga_suite: bool = False
    """Also run `evalkit run --suite saga` on the base and the final model (slow on CPU)."""
    saga_limit: int | None = Field(None, ge=1)
    """Samples per SAGA-suite task (None: all)."""

    @model_validator(mode="before")
    @classmethod
    def _fill_file(cls, data: Any) -> Any:
        return _default_file(data, _EVAL_FILE)


class SFTSettings(_Strict):
    """SAGA's auto-SFT: KL-regularised LoRA SFT on Bokmål text when base PS < τ."""

    threshold: float = Field(0.80, ge=0.0, le=1.0)
    """τ: run SFT first iff the base model's PS under the training oracle is below it."""
    kl_weight: float = Field(0.10, ge=0.0)
    """λ in loss = CE + λ·KL(policy ‖ frozen base), per token."""
    n_sentences: int = Field(10_000, ge=1)
    """Training sentences (SAGA: 10k Norwegian Wikipedia; evalkit: NDT Bokmål minus held-out)."""
    epochs: float = Field(3.0, gt=0.0)
    """Passes over the sentences (SAGA: 3)."""
    learning_rate: float = Field(2e-4, gt=0.0)
    """AdamW learning rate (evalkit default; SAGA publishes none)."""
    batch_size: int = Field(32, ge=1)
    """Sentences per optimiser step."""
    max_length: int = Field(64, ge=4)
    """Tokens per sentence (longer ones are cut)."""


class CandidateGroup(_Strict):
    """`n` candidates per prompt sampled at one temperature (one request with n-sampling)."""

    temperature: float = Field(gt=0.0)
    """Sampling temperature."""
    n: int = Field(ge=1)
    """Candidates at this temperature."""


class CandidateSettings(_Strict):
    """Candidate sampling (SAGA: N = 8, 4 at T 0.7 and 4 at T 1.1, repetition penalty 1.3)."""

    prompts: PromptSource = PromptSource(file=_TRAIN_FILE)
    """Training prompts (UD Bokmål dev): a different source from the evaluation prompts."""
    groups: list[CandidateGroup] = [CandidateGroup(temperature=0.7, n=4),
                                    CandidateGroup(temperature=1.1, n=4)]
    """Temperature groups; N = the sum of their `n`."""
    repetition_penalty: float = Field(1.3, ge=1.0)
    """Anti-hacking: discourages degenerate repetition while sampling."""
    max_new_tokens: int = Field(60, ge=1)
    """New tokens per candidate (as in evaluation)."""

    @model_validator(mode="before")
    @classmethod
    def _fill_file(cls, data: Any) -> Any:
        return _default_file(data, _TRAIN_FILE)


class PairSettings(_Strict):
    """Preference-pair mining from scored candidates (SAGA: Δ ≥ 0.25, chosen ≥ 0.20)."""

    min_delta: float = Field(0.25, ge=0.0)
    """Keep a pair iff score(chosen) − score(rejected) ≥ this."""
    min_chosen: float = 0.20
    """… and score(chosen) ≥ this."""
    strategy: Literal["disjoint", "best_worst", "all"] = "disjoint"
    """How candidates of one prompt are paired (evalkit default, SAGA does not say):
    `disjoint` pairs the i-th best with the i-th worst, each candidate used once;
    `best_worst` keeps one pair per prompt; `all` keeps every qualifying pair."""
    max_per_prompt: int | None = Field(None, ge=1)
    """Cap on pairs per prompt (None: no cap beyond the strategy's)."""


class LoraSettings(_Strict):
    """The LoRA adapter trained by SFT and DPO (SAGA: r 16, α 32, dropout 0.05, all linear)."""

    r: int = Field(16, ge=1)
    """LoRA rank."""
    alpha: int = Field(32, ge=1)
    """LoRA α (scale α / r)."""
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    """LoRA dropout."""
    target_modules: str | list[str] = "all-linear"
    """Modules to adapt; peft's `all-linear` = every linear layer except the output head."""


class DPOSettings(_Strict):
    """TRL `DPOTrainer` settings (SAGA: β 0.1, 2 epochs, bf16)."""

    beta: float = Field(0.1, gt=0.0)
    """DPO β."""
    epochs: float = Field(2.0, gt=0.0)
    """Passes over the pairs (SAGA: 2; 1 epoch gave a third of the gain in measurements)."""
    learning_rate: float = Field(5e-4, gt=0.0)
    """evalkit default, SAGA publishes none: 5e-4 raised PS on a 4.5M-parameter model, 5e-5 gave
    nothing and TRL's own default (1e-6) does nothing at all."""
    batch_size: int = Field(8, ge=1)
    """Pairs per optimiser step."""
    warmup_steps: int = Field(0, ge=0)
    """Linear warm-up steps (TRL 1.16 rejects `warmup_ratio`)."""
    max_length: int = Field(160, ge=8)
    """Prompt + completion tokens (TRL truncates beyond)."""
    bf16: bool | None = None
    """bf16 training; None = on when CUDA is available (SAGA: bf16), off on CPU (TRL raises)."""


class DPOLoopConfig(_Strict):
    """Everything `evalkit dpo CONFIG` needs; a file sets only what differs from SAGA."""

    model: str = "default"
    """Base checkpoint: a local dir, a hub id, or `default` (evalkit's embedded Bokmål model)."""
    backend: str = "hf"
    """Generation backend (`hf`, `vllm`, …); candidates use its n-sampling."""
    backend_options: dict[str, Any] = {}
    """Backend options: the chosen backend's config fields (`evalkit.backends.base.HFConfig`,
    `VLLMConfig`), e.g. dtype, batch_size."""
    data_dir: str | None = None
    """Data mirror (else $EVALKIT_DATA_DIR, else ../shared/data)."""
    seed: int = 0
    """Seed of candidate sampling and training."""
    threads: int | None = 2
    """torch CPU threads (None: torch's choice); the shared 2-core machines need 1–2."""
    rounds: int = Field(1, ge=1)
    """Δ-DPO rounds; round k samples candidates from round k − 1's adapter."""
    oracles: OracleSettings = OracleSettings()
    """Training oracle and held-out evaluator."""
    evaluation: EvalSettings = EvalSettings()
    """Parse-success measurement before and after."""
    sft: SFTSettings = SFTSettings()
    """The auto-SFT stage."""
    candidates: CandidateSettings = CandidateSettings()
    """Candidate sampling."""
    pairs: PairSettings = PairSettings()
    """Pair mining."""
    lora: LoraSettings = LoraSettings()
    """LoRA adapter shape (SFT and DPO)."""
    dpo: DPOSettings = DPOSettings()
    """DPO training."""

    @property
    def n_candidates(self) -> int:
        """N: candidates per prompt."""
        return sum(g.n for g in self.candidates.groups)


def _read(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix == ".toml":
        import tomllib

        return tomllib.loads(text)
    if suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise BadInput(f"{path}: reading YAML needs PyYAML; use a .toml or .json "
                           "config") from None
        data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise BadInput(f"{path}: the top level must be a mapping")
        return data
    if suffix == ".json":
        return json.loads(text)
    raise BadInput(f"{path}: unknown config type {suffix!r}; use .toml, .yaml or .json")


def load_config(path: Path | str) -> DPOLoopConfig:
    """Read and validate a config file; problems become one-line `BadInput` errors."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"config file {path} not found; see examples/dpo_small.toml")
    try:
        data = _read(path)
    except (ValueError, OSError) as exc:  # tomllib/json decode errors are ValueErrors
        first = next((x for x in str(exc).splitlines() if x.strip()), type(exc).__name__)
        raise BadInput(f"{path}: cannot parse as TOML/JSON ({first}); fix the file") from None
    if not data:
        raise BadInput(f"{path} is empty; an empty config would start a full-size run with "
                       "every default — name at least the model (see examples/dpo_small.toml)")
    try:
        return DPOLoopConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(map(str, err["loc"])) or "(top level)"
        raise BadInput(f"{path}: {where}: {err['msg']}") from None
