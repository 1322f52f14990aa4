"""Batch shapes and threads chosen from measurements (evalkit.backends.hf_tuning), and the hf
backend's capped passes: texts never depend on a row having been cut and generated again."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.backends.hf_tuning import BatchSizer, CapSchedule, ThreadTuner, thread_candidates
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
