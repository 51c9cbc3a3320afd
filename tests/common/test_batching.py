import numpy as np
import torch

from common.batching import BucketBatchSampler, StreamBatcher, length_mask, pad_batch


def test_pad_batch_and_mask():
    padded, lengths = pad_batch([[5, 6, 7], [8], []], pad_id=0)
    assert padded.tolist() == [[5, 6, 7], [8, 0, 0], [0, 0, 0]]
    assert lengths.tolist() == [3, 1, 0]
    assert length_mask(lengths).tolist() == [[True] * 3, [True, False, False], [False] * 3]
    cut, n = pad_batch([torch.arange(5)], max_len=2)
    assert cut.tolist() == [[0, 1]] and n.tolist() == [2]


def test_bucket_sampler_covers_everything_once_with_similar_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 100, size=1000)
    sampler = BucketBatchSampler(lengths, batch_size=16, pool=10, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1000))
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in batches])
    assert spread < 15  # random batches of 16 from 1..99 spread about 85
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_bucket_sampler_ranks_are_disjoint_and_equal():
    lengths = list(range(1, 102))
    parts = [list(BucketBatchSampler(lengths, 4, rank=r, world_size=2, seed=3)) for r in (0, 1)]
    assert len(parts[0]) == len(parts[1])
    seen0 = {i for b in parts[0] for i in b}
    seen1 = {i for b in parts[1] for i in b}
    assert not seen0 & seen1


def test_stream_batcher_windows_continue_rows():
    ids = np.arange(23)
    s = StreamBatcher(ids, batch_size=2, bptt=4)
    assert s.data.tolist()[0] == list(range(11))
    x0, y0 = s.window(0)
    x1, _ = s.window(1)
    assert x0.tolist() == [[0, 1, 2, 3], [11, 12, 13, 14]]
    assert y0.tolist() == [[1, 2, 3, 4], [12, 13, 14, 15]]
    assert x1[:, 0].tolist() == [4, 15]
    windows = list(s)
    assert len(windows) == 3 and windows[-1][0].shape == (2, 2)


def test_stream_batcher_ranks_split_rows():
    ids = np.arange(40)
    r0 = StreamBatcher(ids, batch_size=2, bptt=3, rank=0, world_size=2)
    r1 = StreamBatcher(ids, batch_size=2, bptt=3, rank=1, world_size=2)
    assert r0.data[:, 0].tolist() == [0, 20] and r1.data[:, 0].tolist() == [10, 30]
    assert len(r0) == len(r1)
