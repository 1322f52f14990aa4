"""Batch shapes and threads chosen from measurements (evalkit.backends.hf_tuning), and the hf
backend's capped passes: texts never depend on a row having been cut and generated again."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.backends.hf_tuning import (
    BatchSizer,
    CapSchedule,
    ThreadTuner,
    prefill_cost,
    thread_candidates,
)
from evalkit.types import GenParams, GenRequest


class FakeTorch:
    """torch's thread setting, plus a clock whose step time depends on it."""

    def __init__(self, ms_per_step: dict[int, float]) -> None:
        self.threads = max(ms_per_step)
        self.ms = ms_per_step
        self.now = 0.0
        self.calls: list[int] = []

    def get_num_threads(self) -> int:
        return self.threads

    def set_num_threads(self, n: int) -> None:
        self.threads = n
        self.calls.append(n)

    def clock(self) -> float:
        return self.now

    def run_steps(self, tuner: ThreadTuner, steps: int) -> None:
        tuner.new_batch()
        tuner.step()  # after the prompt's forward pass
        for _ in range(steps):
            self.now += self.ms[self.threads] / 1000
            tuner.step()


def test_thread_candidates() -> None:
    assert thread_candidates(1) == [1]
    assert thread_candidates(2) == [1, 2]
    assert thread_candidates(16) == [1, 8, 16]


def test_tuner_picks_the_faster_count_and_follows_a_change_of_load() -> None:
    fake = FakeTorch({1: 10.0, 2: 6.0})  # quiet: two threads are faster
    tuner = ThreadTuner(fake, 2, clock=fake.clock, min_interval=10.0)
    fake.run_steps(tuner, 40)
    assert tuner.best == 2 and fake.threads == 2
    fake.ms = {1: 10.0, 2: 400.0}  # another process takes a core: two threads collapse
    fake.now += 11.0  # past the next trial time
    fake.run_steps(tuner, 40)
    assert tuner.best == 1 and fake.threads == 1
    # the slow count cost ~1.6 s in that trial: the next one waits ≥ 20 × that
    assert tuner.next_trial - fake.now > 20.0
    assert [h["chosen"] for h in tuner.history] == [2, 1]


def test_tuner_drops_a_trial_cut_by_the_end_of_a_batch() -> None:
    fake = FakeTorch({1: 10.0, 2: 6.0})
    tuner = ThreadTuner(fake, 2, clock=fake.clock)
    fake.run_steps(tuner, 3)  # too few steps for a whole trial
    tuner.new_batch()  # step times of the next batch are not comparable: start over
    assert tuner.history == [] and fake.threads == tuner.best == 2
    fake.run_steps(tuner, 40)
    assert len(tuner.history) == 1


def test_decode_choice_is_kept_per_batch_size() -> None:
    """Small batches fastest on one thread, large ones on two: each size bucket keeps its own
    choice, and a new bucket starts from its nearest measured neighbour."""
    fake = FakeTorch({1: 10.0, 2: 6.0})

    def batch(rows: int, ms: dict[int, float], steps: int = 40) -> None:
        fake.ms = ms
        tuner.new_batch(rows=rows)
        tuner.step()
        for _ in range(steps):
            fake.now += fake.ms[fake.threads] / 1000
            tuner.step()

    tuner = ThreadTuner(fake, 2, clock=fake.clock)
    batch(16, {1: 5.0, 2: 8.0})
    batch(128, {1: 30.0, 2: 18.0})
    assert tuner.best_by == {5: 1, 8: 2}
    tuner.new_batch(rows=20)
    assert fake.threads == 1  # the 16-row choice
    tuner.new_batch(rows=100)
    assert fake.threads == 2  # the 128-row choice
    assert [h["rows"] for h in tuner.history] == [16, 128]


class LayerTorch(FakeTorch):
    """A prefill whose layers take `ms_per_layer[threads]` each."""

    def prefill(self, tuner: ThreadTuner, layers: int, ms_per_layer: dict[int, float],
                rows: int = 8) -> list[int]:
        tuner.new_batch(1e9, rows=rows, layers=layers)
        used = []
        for i in range(layers):
            tuner.layer(i)
            used.append(self.threads)
            self.now += ms_per_layer[self.threads] / 1000
        tuner.layer(layers)
        tuner.step()  # after the prompt's forward pass
        return used


def test_prefill_threads_are_tried_side_by_side_within_one_pass() -> None:
    """The first pass (set-up costs) runs on all threads untimed; the next splits its layers
    between the counts, keeps the faster, and a later trial follows a change of load."""
    fake = LayerTorch({1: 10.0, 2: 20.0})  # decode steps: one thread is faster
    tuner = ThreadTuner(fake, 2, clock=fake.clock, min_interval=10.0)
    tuner.new_batch(rows=8)  # decode steps of 8-row batches: one thread chosen
    tuner.step()
    for _ in range(40):
        fake.now += fake.ms[fake.threads] / 1000
        tuner.step()
    assert tuner.best == 1 and tuner.history == [{"ms_per_step": {1: 10.0, 2: 20.0},
                                                  "chosen": 1, "rows": 8}]
    fake.now += 11.0
    assert fake.prefill(tuner, 4, {1: 100.0, 2: 55.0}) == [2, 2, 2, 2]  # warm-up pass
    assert fake.threads == 1  # the decode steps run on their own choice
    assert len(tuner.history) == 1
    assert fake.prefill(tuner, 4, {1: 100.0, 2: 55.0}) == [2, 2, 1, 1]  # the trial
    assert tuner.prefill_best == 2 and tuner.history[-1]["prefill_chosen"] == 2
    assert fake.threads == 1
    assert fake.prefill(tuner, 4, {1: 100.0, 2: 55.0}) == [2, 2, 2, 2]  # no trial due
    assert fake.threads == 1
    fake.now += 11.0
    busy = {1: 100.0, 2: 170.0}  # another process takes a core
    assert fake.prefill(tuner, 4, busy) == [2, 2, 1, 1]
    assert tuner.prefill_best == 1
    assert fake.prefill(tuner, 4, busy) == [1, 1, 1, 1]
    assert [h["prefill_chosen"] for h in tuner.history if "prefill_chosen" in h] == [2, 1]


def test_prefill_trial_without_layer_calls_compares_whole_passes_per_operation() -> None:
    """The transformers engine gives no layer calls: each count runs a whole pass and the
    passes are compared in operations per second (wider batches cost more per token)."""
    fake = FakeTorch({1: 10.0, 2: 20.0})
    tuner = ThreadTuner(fake, 2, clock=fake.clock)
    cost = prefill_cost({"hidden_size": 256, "num_attention_heads": 4, "intermediate_size": 768})
    speed = {1: 1e9, 2: 1.8e9}  # operations per second
    for rows, width in [(16, 448), (32, 155), (64, 131), (64, 100)]:
        ops = cost(rows, width)
        tuner.new_batch(ops, rows=rows)
        fake.now += ops / speed[fake.threads]
        tuner.step()
    assert tuner.prefill_best == 2
    assert [h["prefill_chosen"] for h in tuner.history] == [2]
    assert cost(8, 400) > 2 * cost(16, 100)  # attention grows with width


def test_cap_schedule() -> None:
    caps = CapSchedule(256)
    assert caps.first_pass() == 64
    caps.record([10] * 90 + [20] * 9, censored=1, cap=64)
    assert caps.first_pass() == 40  # twice the 95th percentile (20)
    assert caps.next_cap(40) == 160 and caps.next_cap(160) == 256
    long = CapSchedule(1280)
    long.record([5], censored=9, cap=64)  # most rows ran past the cap: outputs are long
    assert long.first_pass() == 256
    short = CapSchedule(12)
    assert short.first_pass() == 12


def test_batch_sizer_grows_while_throughput_improves_then_keeps_the_best() -> None:
    sizer = BatchSizer(None, 1 << 20)
    rate = {16: 100.0, 32: 180.0, 64: 200.0, 128: 150.0}
    sizes = []
    for _ in range(7):
        b = sizer.size(10_000, 40, 40)
        sizes.append(b)
        sizer.record(b, int(rate.get(b, 50.0)), 1.0, full=True)
    assert sizes[:4] == [16, 32, 64, 128] and sizes[4:] == [64, 64, 64]
    assert BatchSizer(3, 1 << 20).size(10, 40, 40) == 3
    assert BatchSizer(None, 800).size(10_000, 60, 40) == 8  # memory bound: 800 // 100


def test_batch_sizer_learns_from_batches_that_ran_side_by_side() -> None:
    """Two streams take a size before either result is in: the second result of a size
    already doubled from must not end the growth, and a late, slower result of a smaller size
    must not either; the largest size's own result decides."""
    sizer = BatchSizer(None, 1 << 20)
    a, b = sizer.size(10_000, 40, 40), sizer.size(10_000, 40, 40)
    assert a == b == 16
    sizer.record(16, 100, 1.0, full=True)
    sizer.record(16, 90, 1.0, full=True)
    assert sizer.growing and sizer.size(10_000, 40, 40) == 32
    sizer.record(32, 180, 1.0, full=True)  # 32 is faster: 64 next
    sizer.record(16, 60, 1.0, full=True)  # a late 16-row batch
    assert sizer.growing and sizer.size(10_000, 40, 40) == 64
    sizer.record(64, 150, 1.0, full=True)  # 64 is slower than 32: settle on 32
    assert not sizer.growing and sizer.size(10_000, 40, 40) == 32


@pytest.fixture(scope="module")
def backend(tiny_model: Path):
    from evalkit.backends.base import HFConfig
    from evalkit.backends.hf import HFBackend

    b = HFBackend(HFConfig(model=str(tiny_model)))
    yield b
    b.close()


PROMPTS = ["English sentence: The cat sat.\nNorwegian Bokmål sentence:", "Hei", "Kaixo mundua",
           "Jeg liker kaffe om morgenen og kvelden", "Write a poem", "Zer moduz?"]


@pytest.mark.parametrize("params", [GenParams(max_new_tokens=24),
                                    GenParams(max_new_tokens=24, temperature=1.0, n=3, seed=5),
                                    GenParams(max_new_tokens=24, stop=("a",))])
def test_rows_cut_at_a_cap_and_generated_again_equal_uncut_rows(backend, monkeypatch,
                                                                 params: GenParams) -> None:
    """A first-pass cap of 2 tokens cuts every row that runs longer; their second pass must
    give exactly the texts (and token counts) of a single uncapped pass, greedy and sampled."""
    from evalkit.backends import hf_tuning

    reqs = [GenRequest(p, params) for p in PROMPTS]
    monkeypatch.setattr(hf_tuning.CapSchedule, "first_pass", lambda self: self.max_new)
    whole = dict(backend.generate(reqs))
    monkeypatch.setattr(hf_tuning.CapSchedule, "first_pass", lambda self: 2)
    monkeypatch.setattr(hf_tuning.CapSchedule, "next_cap", lambda self, cap: min(
        self.max_new, cap + 5))
    cut = dict(backend.generate(reqs))
    assert sorted(cut) == list(range(len(reqs)))
    for i in range(len(reqs)):
        assert cut[i].texts == whole[i].texts
        assert cut[i].n_tokens == whole[i].n_tokens
        assert cut[i].finish_reasons == whole[i].finish_reasons
    assert any(n > 2 for g in whole.values() for n in g.n_tokens)  # rows really were cut
