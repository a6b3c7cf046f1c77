import numpy as np
import pytest
import torch

from kit.data.windows import (Window, eval_windows, grid_starts, jittered, shuffled, train_windows,
                              uniform_indices, window_mask)


def test_uniform_indices_180_pinned():
    # The seed's comment says [0, 12, 24, ...]; linspace truncation gives these.
    assert uniform_indices(180).tolist() == [0, 11, 23, 35, 47, 59, 71, 83, 95, 107, 119, 131, 143,
                                             155, 167, 179]
    assert torch.equal(uniform_indices(180), torch.linspace(0, 179, 16).long())


@pytest.mark.parametrize("T", [1, 5, 15, 16, 17, 240])
def test_uniform_indices_shape_range_order(T):
    idx = uniform_indices(T)
    assert idx.shape == (16,) and idx.dtype == torch.long
    assert idx[0] == 0 and idx[-1] == T - 1
    assert (idx[1:] >= idx[:-1]).all()


def test_uniform_indices_short_window_repeats():
    assert uniform_indices(4, 8).tolist() == [0, 0, 0, 1, 1, 2, 2, 3]
    assert uniform_indices(1).tolist() == [0] * 16
    with pytest.raises(ValueError):
        uniform_indices(0)


@pytest.mark.parametrize("length,T,stride", [(300, 180, 90), (181, 180, 90), (1000, 240, 120), (50, 180, 90),
                                             (180, 180, 90), (7, 3, 3)])
def test_grid_covers_every_frame(length, T, stride):
    starts = grid_starts(length, T, stride)
    covered = torch.zeros(length, dtype=torch.bool)
    for s in starts:
        assert 0 <= s and (s + T <= length or s == 0)
        covered[s:s + T] = True
    assert covered.all()
    assert starts == sorted(set(starts))


def test_grid_covers_every_frame_even_with_stride_above_T():
    covered = torch.zeros(7, dtype=torch.bool)
    for s in grid_starts(7, 3, 5):
        covered[s:s + 3] = True
    assert covered.all()


def test_window_frames_and_mask_pad_past_the_end():
    w = Window(video=0, start=0, T=8)
    assert w.frames(5).tolist() == [0, 1, 2, 3, 4, -1, -1, -1]
    assert w.mask(5).tolist() == [True] * 5 + [False] * 3
    assert window_mask(10, 4, 12).tolist() == [True, True, False, False]
    assert Window(0, 3, 4).frames(100).tolist() == [3, 4, 5, 6]


def test_eval_windows_cover_all_videos():
    lengths = [100, 500, 241]
    ws = eval_windows(lengths, 240)
    for v, L in enumerate(lengths):
        seen = set()
        for w in ws:
            if w.video == v:
                seen |= set(w.frames(L)[w.mask(L)].tolist())
        assert seen == set(range(L))


def test_shuffled_is_a_seeded_permutation():
    ws = train_windows([400, 300], 180, 90)
    a, b = shuffled(ws, 0, 1), shuffled(ws, 0, 1)
    assert a == b and sorted(a, key=lambda w: (w.video, w.start)) == ws
    assert shuffled(ws, 0, 2) != a


def test_jittered_windows_train_every_frame_equally_often():
    """Starts uniform over [-(T-1), L-1]: each frame is in a window with probability T / (L + T - 1),
    the first and last frames included (starts in [0, L-T] almost never cover them)."""
    lengths = [400, 100]
    ws = train_windows(lengths, 180, 90)
    cover = [np.zeros(n) for n in lengths]
    for epoch in range(400):
        for w in jittered(ws, lengths, seed=0, epoch=epoch):
            assert -(w.T - 1) <= w.start <= lengths[w.video] - 1  # overlaps the video
            real = w.frames(lengths[w.video])
            cover[w.video][real[real >= 0].numpy()] += 1
    for n, c in zip(lengths, cover):
        c = c / c.mean()
        assert c.min() > 0.8 and c.max() < 1.2, (n, c.min(), c.max())  # flat, ends included
    w = Window(0, -5, 10)
    assert w.frames(100).tolist() == [-1] * 5 + [0, 1, 2, 3, 4] and w.mask(100).sum() == 5
    assert w.decoded(torch.arange(10), 100).tolist() == [0] * 6 + [1, 2, 3, 4]  # padding reads the nearest frame


def test_window_decoded_frames_clamp_padding_to_the_last_frame():
    from kit.data.windows import Window
    assert Window(0, 10, 8).decoded(torch.tensor([0, 3, 7]), length=15).tolist() == [10, 13, 14]
