"""``nb_parse``: Bokmål parse success (SAGA PS and parse score) under the grammar oracles.

Prompts are the first words of held-out Bokmål sentences: UD Norwegian Bokmål **test**
(``nob_sentences/ud_no_bokmaal-test.sentences.txt`` in the mirror; never in any oracle's training
data), in file order, keeping sentences of ≥ 6 words whose first words are plain words (no
quotes, dashes or digits); the prompt is their first 4 words (3 when the sentence has < 10 words),
without trailing punctuation. Default 200 prompts (``nb_parse:<n>`` for another count).

Sampling: T = 0.8, top-p 1, 60 new tokens, three draws per prompt with seeds ``--seed``,
``--seed + 1`` and ``--seed + 2`` (0, 1, 2 by default; one request per seed, recorded in the
summary's meta). Without the chat
template the model continues the prompt and ``prompt + continuation`` is judged; with it the
model is asked to continue the text starting with the same words, and an output that starts
with the prompt is judged alone. The judged text is
truncated after its last sentence-final punctuation and split into sentences, then every
configured oracle judges it with SAGA's well-formedness rule (``evalkit.oracles.rule``,
reconstructed). Default oracles: ``spacy-nob`` (training oracle) and ``stanza-nob``
(held-out evaluator); ``--option oracles=spacy-nob,stanza-nob`` / ``fake`` changes them, and
``spacy:<model>`` / ``stanza:<model>`` name an installed official model (``spacy:nb_core_news_sm``,
``stanza:nb``) or a model directory (metrics then use that oracle's id, e.g. ``stanza-nb``).

Metrics, per oracle ``<o>``: ``parse_success:<o>`` (PS, share of generations passing, pooled over
seeds), ``parse_score:<o>`` (PS × mean q; ``parse_score_over=passing`` averages q over passing
generations only), ``mean_reward:<o>``, and ``parse_success_seed_sd:<o>`` /
``parse_score_seed_sd:<o>`` (standard deviation over seeds); for each pair of oracles
``oracle_agreement:<a>|<b>`` (share of generations with the same pass/fail) and
``oracle_kappa:<a>|<b>``; ``no_sentence_rate`` (generations without any complete sentence).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from evalkit.errors import BadInput
from evalkit.metrics import Metric
from evalkit.oracles.specs import check_spec, task_oracle
from evalkit.stats import cohen_kappa
from evalkit.types import (
    Generation,
    GenParams,
    MetricValue,
    Output,
    Sample,
    ScoredTask,
    ScoringContext,
)

SOURCE = "nob_sentences/ud_no_bokmaal-test.sentences.txt"
DEFAULT_ORACLES = ("spacy-nob", "stanza-nob")
DEFAULT_N = 200
SEEDS = (0, 1, 2)  # offsets from the run's --seed
_WORD = re.compile(r"^[A-Za-zÆØÅæøåÉéÈèÄäÖöÜüÓóÔô][\wÆØÅæøå'-]*[,]?$")


def prompt_prefix(sentence: str) -> str | None:
    """The first 3–4 words of a sentence, or None when it is unsuitable as a prompt."""
    words = sentence.split()
    if len(words) < 6:
        return None
    k = 4 if len(words) >= 10 else 3
    head = words[:k]
    if not all(_WORD.match(w) for w in head):
        return None
    return " ".join(head).rstrip(",")


def continuation_text(prompt: str, continuation: str) -> str:
    """The text the oracles judge: prompt + continuation, or the output alone when it already
    starts with the prompt (chat models are asked to repeat it)."""
    if continuation.lstrip().startswith(prompt):
        return continuation.strip()
    if not continuation or continuation[0].isspace() or not continuation[0].isalnum():
        return prompt + continuation
    return f"{prompt} {continuation}"


def chat_prompt(prefix: str) -> str:
    """The user turn for chat models."""
    return ("Fortsett denne teksten på norsk bokmål med én eller to hele setninger. "
            f"Svar bare med teksten, og begynn med de samme ordene.\n\n{prefix}")


#: generations without any complete sentence (no per-sample key: pooled over seeds only)
NO_SENTENCE = Metric("no_sentence_rate", "proportion", higher_is_better=False)


def _mean(xs: Sequence[Any]) -> float | None:
    return sum(float(x) for x in xs) / len(xs) if xs else None


def _oracle_specs(options: Any) -> list[Any]:
    spec = options.get("oracles", options.get("oracle", DEFAULT_ORACLES))
    if isinstance(spec, str):
        spec = [s.strip() for s in spec.split(",") if s.strip()]
    elif not isinstance(spec, (list, tuple)):
        spec = [spec]
    if not spec:
        raise BadInput("nb_parse: option 'oracles' names no oracle")
    return list(spec)


@dataclass(frozen=True)
class ParseSuccessTask:
    """SAGA's parse-success evaluation on Bokmål prompts, judged by one or more oracles."""

    name: str = "nb_parse"
    version: str = "1"
    language: str = "nob_Latn"
    description: str = ("Bokmål parse success (SAGA PS, parse score) under spaCy and Stanza "
                        "oracles, UD test prefixes, T=0.8, 3 seeds")
    n_prompts: int = DEFAULT_N
    seeds: tuple[int, ...] = SEEDS  # offsets added to the run's seed
    gen: GenParams = field(default=GenParams(max_new_tokens=60, temperature=0.8))

    def samples(self, data: Any) -> list[Sample]:
        """The first ``n_prompts`` usable UD test sentences, as prompt prefixes."""
        out: list[Sample] = []
        for i, line in enumerate(data.read_lines(SOURCE)):
            prefix = prompt_prefix(line.strip())
            if prefix is None:
                continue
            out.append(Sample(id=f"ud-test-{i:04d}", data={"prefix": prefix}))
            if len(out) >= self.n_prompts:
                break
        if len(out) < self.n_prompts:
            raise BadInput(f"nb_parse: only {len(out)} usable prompts in {SOURCE}")
        return out

    def check_options(self, options: Any) -> None:
        """Pre-flight (before generation): every configured oracle can be loaded."""
        for spec in _oracle_specs(options):
            check_spec(spec)

    def requests(self, sample: Sample, chat: bool) -> list[tuple[str, GenParams]]:
        """One sampled continuation per seed."""
        prefix = sample.data["prefix"]
        prompt = chat_prompt(prefix) if chat else prefix
        return [(prompt, GenParams(max_new_tokens=self.gen.max_new_tokens,
                                   temperature=self.gen.temperature, top_p=self.gen.top_p,
                                   seed_offset=s)) for s in self.seeds]

    def score(self, samples: Sequence[Sample], outputs: Sequence[Sequence[Output]],
              ctx: ScoringContext) -> ScoredTask:
        """PS and parse score per oracle, their agreement, and the spread over seeds."""
        from evalkit.oracles.rule import RuleConfig, judge, parse_stats
        from evalkit.tasks.oracle_judged import RULE_NAME, first_sentence_mode, parse_metrics

        first = first_sentence_mode(ctx.options)
        over = str(ctx.options.get("parse_score_over", "all"))
        config = RuleConfig(first_sentence_only=first)
        n_seeds = len(self.seeds)
        texts: list[str] = []  # sample-major, seed-minor
        for s, outs in zip(samples, outputs, strict=True):
            for j in range(n_seeds):
                o = outs[j] if j < len(outs) else None
                cont = o.texts[0] if isinstance(o, Generation) and o.texts else ""
                texts.append(continuation_text(s.data["prefix"], cont))
        metrics: dict[str, MetricValue] = {}
        passed_by: dict[str, list[bool]] = {}
        per_sample: list[dict[str, Any]] = [{"texts": texts[i * n_seeds:(i + 1) * n_seeds]}
                                            for i in range(len(samples))]
        prov: dict[str, Any] = {}
        specs = _oracle_specs(ctx.options)
        for k, spec in enumerate(specs):
            name, oracle = task_oracle(spec)
            step = None
            if ctx.progress is not None:  # samples judged, over every oracle
                report = ctx.progress

                def step(done: int, total: int, k: int = k, report: Any = report) -> None:
                    report((k * total + done) // n_seeds, len(specs) * total // n_seeds)
            verdicts = judge(oracle, texts, config, progress=step)
            passed = [bool(v.passed) for v in verdicts]
            passed_by[name] = passed
            for i, row in enumerate(per_sample):
                vs = verdicts[i * n_seeds:(i + 1) * n_seeds]
                row[name] = {"passed": [bool(v.passed) for v in vs],
                             "q": [round(float(v.q), 4) for v in vs],
                             "reward": [round(float(v.reward), 4) for v in vs],
                             "failed_checks": [list(v.failed_checks) for v in vs]}
                # per-sample values of the pooled means: each sample's mean over its seeds
                # (the reward's of the stored, rounded rewards)
                row[f"parse_success:{name}"] = _mean(row[name]["passed"])
                row[f"mean_reward:{name}"] = _mean(row[name]["reward"])
            pm = parse_metrics(passed, [v.q for v in verdicts], ctx.seed, over)
            ps_metric = Metric(f"parse_success:{name}", "proportion",
                               per_sample_key=f"parse_success:{name}")
            metrics[ps_metric.name] = ps_metric.declare(pm["parse_success"])
            metrics[f"parse_score:{name}"] = Metric(f"parse_score:{name}", "corpus").declare(
                pm["parse_score"])
            reward = Metric(f"mean_reward:{name}", "mean", per_sample_key=f"mean_reward:{name}")
            metrics[reward.name] = reward.mean([v.reward for v in verdicts], seed=ctx.seed)
            per_seed = [parse_stats(verdicts[j::n_seeds], over) for j in range(n_seeds)]
            ps_seed = [st.ps for st in per_seed]
            score_seed = [st.parse_score for st in per_seed]
            sd = statistics.stdev if n_seeds > 1 else (lambda _xs: 0.0)
            spread = Metric(f"parse_success_seed_sd:{name}", "corpus", higher_is_better=False)
            metrics[spread.name] = spread.declare(MetricValue(
                value=float(sd(ps_seed)), n=n_seeds, higher_is_better=False,
                note="sd over seeds of PS; per seed: " + ", ".join(f"{x:.3f}" for x in ps_seed)))
            spread = Metric(f"parse_score_seed_sd:{name}", "corpus", higher_is_better=False)
            metrics[spread.name] = spread.declare(MetricValue(
                value=float(sd(score_seed)), n=n_seeds, higher_is_better=False,
                note="per seed: " + ", ".join(f"{x:.3f}" for x in score_seed)))
            prov[name] = {"oracle_model": getattr(oracle, "name", name),
                          "oracle_hash": getattr(oracle, "model_hash", "")}
            metrics[NO_SENTENCE.name] = NO_SENTENCE.mean(
                [float(v.n_sentences == 0) for v in verdicts], seed=ctx.seed)
        names = list(passed_by)
        for a_i, a in enumerate(names):
            for b in names[a_i + 1:]:
                pa, pb = passed_by[a], passed_by[b]
                agree = Metric(f"oracle_agreement:{a}|{b}", "proportion",
                               per_sample_key=f"oracle_agreement:{a}|{b}")
                for row in per_sample:
                    row[agree.sample_key] = _mean([float(x == y) for x, y in
                                                   zip(row[a]["passed"], row[b]["passed"])])
                metrics[agree.name] = agree.mean([float(x == y) for x, y in zip(pa, pb)],
                                                 seed=ctx.seed)
                kappa = Metric(f"oracle_kappa:{a}|{b}", "corpus")
                metrics[kappa.name] = kappa.declare(MetricValue(
                    value=cohen_kappa(pa, pb), n=len(pa), note="Cohen's kappa, pass/fail"))
        meta = {"oracles": prov, "source": SOURCE, "seeds": [ctx.seed + s for s in self.seeds],
                "rule": RULE_NAME,
                "mode": "first-sentence" if first else "strict (all sentences)",
                "judged": "prompt + continuation (the output alone when it repeats the prompt)",
                "reconstructed": True}
        return ScoredTask(per_sample, metrics, meta)


def make_task(name: str) -> ParseSuccessTask:
    """Factory: ``nb_parse`` (200 prompts) or ``nb_parse:<n>``."""
    if name == "nb_parse":
        return ParseSuccessTask()
    family, _, arg = name.partition(":")
    if family == "nb_parse" and arg.isdigit() and int(arg) > 0:
        return ParseSuccessTask(name=name, n_prompts=int(arg))
    raise BadInput(f"task {name!r}: use nb_parse or nb_parse:<number of prompts>")
