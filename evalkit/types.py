"""Value objects that flow through evalkit.

`Task` → `Sample` → `GenRequest` / `LoglikRequest` → `Backend` → `Generation` / `LoglikResult`
→ per-sample scores → `SampleRecord` (JSONL) → aggregate → `RunSummary` (JSONL) → leaderboards.
The record schemas themselves live in `evalkit.records`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class Message:
    """One chat turn."""

    role: Role
    content: str


#: A prompt is either plain text or a conversation; the runner renders conversations (and plain
#: prompts when the chat template is on) with the model's chat template before any backend sees
#: them, so every backend receives byte-identical prompt text.
Prompt = str | tuple[Message, ...]


@dataclass(frozen=True, slots=True)
class GenParams:
    """Sampling parameters of one generation request (vLLM `SamplingParams` names)."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    n: int = 1
    repetition_penalty: float = 1.0
    #: a task that wants several independent draws per prompt (e.g. 3 "seeds") asks for offsets
    #: 0, 1, 2; the runner turns them into seeds ``--seed + offset`` (then resets this to 0)
    seed_offset: int = 0

    @property
    def greedy(self) -> bool:
        """True when decoding is deterministic argmax."""
        return self.temperature <= 0.0

    def key(self) -> dict[str, Any]:
        """The fields that change outputs, for cache keys and records."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class GenRequest:
    """Generate `params.n` continuations of `prompt` (already rendered text).

    `add_special_tokens` is False when a chat template produced the text: templates carry
    their own BOS, and adding another would silently change the prompt.
    """

    prompt: str
    params: GenParams = field(default_factory=GenParams)
    adapter: str | None = None
    add_special_tokens: bool = True
    #: ask the backend for the prompt's and each sample's token ids (preference training needs
    #: the exact tokens it sampled); never part of a cache key
    want_token_ids: bool = False


@dataclass(frozen=True, slots=True)
class LoglikRequest:
    """Log-probability of `continuation` given `context`.

    An empty context means "BOS only" (rolling log-likelihood of a whole text, as perplexity
    and minimal-pair tasks need).
    """

    context: str
    continuation: str
    adapter: str | None = None


Request = GenRequest | LoglikRequest


@dataclass(frozen=True, slots=True)
class Generation:
    """The `n` continuations of one `GenRequest`, stop strings already removed."""

    texts: tuple[str, ...]
    n_tokens: tuple[int, ...] = ()
    finish_reasons: tuple[str, ...] = ()
    #: only when the request set ``want_token_ids``: each text's sampled token ids (before stop
    #: strings were cut) and the prompt's token ids as the model saw them
    token_ids: tuple[tuple[int, ...], ...] = ()
    prompt_token_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class LoglikResult:
    """Summed log-probability of the continuation's tokens."""

    logprob: float
    n_tokens: int
    is_greedy: bool


Output = Generation | LoglikResult


@dataclass(frozen=True, slots=True)
class Sample:
    """One evaluation item: an id unique within its task, the item's fields, a reference."""

    id: str
    data: Mapping[str, Any]
    reference: Any = None


@dataclass(frozen=True, slots=True)
class MetricValue:
    """An aggregate score with its uncertainty and direction.

    `ci` is a 95 % interval (bootstrap unless `ci_method` says otherwise); `se` a standard
    error where one is defined. `signature` holds e.g. sacrebleu's signature string. `kind`,
    `scale` and `per_sample_key` are the declaration of the metric that produced the value
    (`evalkit.metrics.Metric`): what kind of aggregate it is, the factor from per-sample
    values to the metric, and where sample records keep the per-sample values (None: nowhere).
    Values that were never declared leave all three None.
    """

    value: float | None
    n: int
    higher_is_better: bool = True
    se: float | None = None
    ci: tuple[float, float] | None = None
    ci_method: str | None = None
    signature: str | None = None
    note: str | None = None
    kind: str | None = None
    scale: float | None = None
    per_sample_key: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form used in RunSummary."""
        d = asdict(self)
        if self.ci is not None:
            d["ci"] = list(self.ci)
        declared = self.kind is not None
        return {k: v for k, v in d.items()
                if v is not None or k == "value" or (k == "per_sample_key" and declared)}


@dataclass(frozen=True, slots=True)
class ScoredTask:
    """What a task's scoring returns: per-sample scores (aligned with samples) and aggregates."""

    per_sample: list[dict[str, Any]]
    metrics: dict[str, MetricValue]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScoringContext:
    """What scoring may use besides the outputs: options and (for judged tasks) a judge backend.

    Scoring must be a pure function of samples, outputs and this context, so re-scoring saved
    generations gives the same numbers.
    """

    options: Mapping[str, Any] = field(default_factory=dict)
    judge: Any = None  # a Backend, only for tasks that declare `needs_judge`
    data: Any = None  # the DataLayer, for tasks that need side resources at scoring time
    seed: int = 0
    #: ``progress(done, total)`` for scoring that takes a while (parser oracles, LLM judges);
    #: never changes a score
    progress: Callable[[int, int], None] | None = None


@runtime_checkable
class Task(Protocol):
    """A typed task plugin.

    Attributes:
        name: full resolved name, e.g. ``flores:eng_Latn-nob_Latn``.
        version: bump whenever prompts, data selection or scoring change.
        language: FLORES-style code of the language evaluated (``nob_Latn``).
        description: one line for ``evalkit tasks``.

    Optional, looked up with ``getattr`` by the runner: ``prefers_chat`` (bool: use the chat
    template when the model has one) and ``check_options(options)`` (vet ``--option`` values
    cheaply before any generation; raise :class:`evalkit.errors.EvalkitError`).
    """

    name: str
    version: str
    language: str
    description: str

    def samples(self, data: Any) -> list[Sample]:
        """Load the task's samples through the data layer (`evalkit.data.DataLayer`)."""
        ...

    def requests(self, sample: Sample, chat: bool
                 ) -> list[tuple[Prompt, GenParams] | LoglikRequest]:
        """The requests one sample needs: (prompt, params) pairs for generation, or loglik ones.

        `chat` tells whether the run applies the chat template; a task may phrase its prompt
        differently for chat models. Rendering happens in the runner.
        """
        ...

    def score(self, samples: Sequence[Sample], outputs: Sequence[Sequence[Output]],
              ctx: ScoringContext) -> ScoredTask:
        """Score the outputs (aligned with `samples`, one list per sample, one per request)."""
        ...


TaskFactory = Callable[[str], Task]


def sha256_text(text: str) -> str:
    """Hex sha256 of a UTF-8 string."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stable_hash(obj: Any) -> str:
    """Hex sha256 of a JSON-serialisable object with sorted keys (order-independent dicts)."""
    return sha256_text(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str))
