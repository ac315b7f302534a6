"""Explicit randomness: derived seeds, per-chunk generators, forward-noise streams."""

from __future__ import annotations

import torch

from analogsim.devices import load_device
from analogsim.devices.rng import NoiseStream, chunk_generator, derive_seed
from tests.devices._stats import assert_close_mean, assert_close_std


def test_derive_seed_is_deterministic_and_order_sensitive():
    assert derive_seed(1, 2, "a") == derive_seed(1, 2, "a")
    assert derive_seed(1, 2) != derive_seed(2, 1)
    assert derive_seed(1, "2") != derive_seed(1, 2)  # strings and integers are distinct keys
    assert 0 <= derive_seed(-5, "x") < 2**63


def test_chunk_generators_differ_by_chunk():
    a = torch.randn(8, generator=chunk_generator(7, 0))
    b = torch.randn(8, generator=chunk_generator(7, 1))
    assert not torch.equal(a, b)
    assert torch.equal(a, torch.randn(8, generator=chunk_generator(7, 0)))


def test_noise_stream_replays_after_reseed_and_is_standard_normal():
    n = 1 << 18  # large enough for the two-thread fill
    s = NoiseStream(3)
    first = s.fill_(torch.empty(n)).clone()
    second = s.fill_(torch.empty(n)).clone()
    assert not torch.equal(first, second)
    s.reseed(3)
    assert torch.equal(s.fill_(torch.empty(n)), first)
    assert torch.equal(NoiseStream(3).fill_(torch.empty(n)), first)
    assert not torch.equal(NoiseStream(4).fill_(torch.empty(n)), first)
    # both halves (two generators) are standard normal
    for half in (first[: n // 2], first[n // 2 :]):
        assert_close_mean(half.double(), 0.0)
        assert_close_std(half.double(), 1.0)
    # the halves are different streams, not copies
    assert not torch.equal(first[: n // 2], first[n // 2 :])


def test_numbers_do_not_depend_on_the_thread_count():
    pcm = load_device("pcm")
    g_t = torch.linspace(0.0, 25.0, 300_000)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = pcm.conductances(g_t, 5, 3600.0)
        noise_one = NoiseStream(2).fill_(torch.empty(1 << 18))
        torch.set_num_threads(2)
        two = pcm.conductances(g_t, 5, 3600.0)
        noise_two = NoiseStream(2).fill_(torch.empty(1 << 18))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two)
    assert torch.equal(noise_one, noise_two)
