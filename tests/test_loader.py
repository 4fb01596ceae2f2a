"""DataLoader: batching, len, drop_last, seeded shuffling, exact resume, background workers."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
from minicnn import random as mc_random
from minicnn.data import ArrayDataset, DataLoader
from minicnn.data import transforms as T


def indexed(n, c=1, h=2, w=3, transform=None):
    """A dataset whose image i is filled with the value i, label i % 7: batches reveal the order."""
    images = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None, None], (n, c, h, w))
    return ArrayDataset(images.copy(), np.arange(n) % 7, transform=transform)


def order_of(batches):
    return [int(v) for x, _ in batches for v in x.data[:, 0, 0, 0]]


class PlainDataset:
    """Only __len__ and __getitem__, as a user might write one."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full((1, 2, 2), i, dtype=np.float64), i % 3


@given(n=st.integers(0, 50), bs=st.integers(1, 12), drop_last=st.booleans())
def test_len_and_batches(n, bs, drop_last):
    loader = DataLoader(indexed(n), batch_size=bs, drop_last=drop_last)
    expected = n // bs if drop_last else math.ceil(n / bs)
    assert len(loader) == expected
    batches = list(loader)
    assert len(batches) == expected
    sizes = [len(x.data) for x, _ in batches]
    assert all(s == bs for s in sizes[:-1])
    if batches:
        assert sizes[-1] == (bs if drop_last or n % bs == 0 else n % bs)
    assert order_of(batches) == list(range(sum(sizes)))  # no shuffle: dataset order


def test_yields_tensors():
    x, y = next(iter(DataLoader(indexed(10, 3, 4, 5), batch_size=4)))
    assert isinstance(x, mc.Tensor) and isinstance(y, mc.Tensor)
    assert x.shape == (4, 3, 4, 5) and x.dtype == np.float32 and not x.requires_grad
    assert y.shape == (4,) and y.dtype == np.int64
    np.testing.assert_array_equal(y.data, [0, 1, 2, 3])


def test_plain_dataset_and_stacking():
    batches = list(DataLoader(PlainDataset(7), batch_size=3))
    x, y = batches[0]
    assert x.dtype == np.float32 and x.shape == (3, 1, 2, 2) and y.dtype == np.int64
    assert order_of(batches) == list(range(7))
    np.testing.assert_array_equal(batches[-1][1].data, [0])


def test_array_dataset_fast_path_skips_getitem(monkeypatch):
    ds = indexed(20)
    monkeypatch.setattr(ArrayDataset, "__getitem__", lambda self, i: pytest.fail("per-item access"))
    assert order_of(DataLoader(ds, batch_size=6)) == list(range(20))


def test_seeded_shuffle():
    ds = indexed(23)
    a = [order_of(DataLoader(ds, 5, shuffle=True, seed=7)) for _ in range(2)]
    assert a[0] == a[1]
    assert sorted(a[0]) == list(range(23)) and a[0] != list(range(23))
    assert order_of(DataLoader(ds, 5, shuffle=True, seed=8)) != a[0]
    loader = DataLoader(ds, 5, shuffle=True, seed=7)
    epochs = [order_of(loader) for _ in range(3)]
    assert epochs[0] == a[0]
    assert epochs[0] != epochs[1] != epochs[2]  # a new order every epoch
    assert all(sorted(e) == list(range(23)) for e in epochs)
    # labels travel with their images
    for x, y in DataLoader(ds, 4, shuffle=True, seed=1):
        np.testing.assert_array_equal(y.data, x.data[:, 0, 0, 0].astype(np.int64) % 7)


def test_drop_last_with_shuffle():
    loader = DataLoader(indexed(10), 4, shuffle=True, drop_last=True, seed=0)
    seen = order_of(loader)
    assert len(seen) == 8 and len(set(seen)) == 8


def test_global_generator_when_no_seed():
    ds = indexed(30)
    mc.manual_seed(123)
    a = [order_of(DataLoader(ds, 8, shuffle=True)) for _ in range(2)]
    mc.manual_seed(123)
    b = [order_of(DataLoader(ds, 8, shuffle=True)) for _ in range(2)]
    assert a == b and a[0] != a[1]


def test_eval_loader_leaves_global_generator_alone():
    mc.manual_seed(5)
    before = mc_random.get_state()
    list(DataLoader(indexed(10), 3))
    assert mc_random.get_state() == before


def test_resume_mid_epoch_seeded():
    ds = indexed(17, transform=T.RandomCrop(2, padding=1))
    reference = DataLoader(ds, 4, shuffle=True, seed=3)
    full = [(x.data.copy(), y.data.copy()) for _ in range(3) for x, y in reference]

    run = DataLoader(ds, 4, shuffle=True, seed=3)
    got = [(x.data.copy(), y.data.copy()) for x, y in run]  # one epoch: 5 batches
    it = iter(run)
    for _ in range(2):  # and two batches of the next
        x, y = next(it)
        got.append((x.data.copy(), y.data.copy()))
    state = run.state_dict()
    del it, run

    resumed = DataLoader(ds, 4, shuffle=True, seed=3)
    resumed.load_state_dict(state)
    assert resumed.epoch == 2
    got += [(x.data.copy(), y.data.copy()) for x, y in resumed]  # the rest of epoch 2
    got += [(x.data.copy(), y.data.copy()) for x, y in resumed]  # epoch 3
    assert len(got) == len(full) == 15
    for (xa, ya), (xb, yb) in zip(got, full):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_resume_with_global_generator():
    ds = indexed(12)
    mc.manual_seed(9)
    loader = DataLoader(ds, 5, shuffle=True)
    first = order_of(loader)
    state, rng_state = loader.state_dict(), mc_random.get_state()
    expected = [order_of(loader) for _ in range(2)]
    mc.manual_seed(0)  # something else happens in between
    again = DataLoader(ds, 5, shuffle=True)
    again.load_state_dict(state)
    mc_random.set_state(rng_state)
    assert [order_of(again) for _ in range(2)] == expected and first not in expected
    with pytest.raises(ValueError, match="saved from a loader without a seed, this one has seed=1"):
        DataLoader(ds, 5, seed=1).load_state_dict(state)


@pytest.mark.parametrize("workers", [1, 3])
def test_workers_give_the_same_batches(workers):
    tf = T.Compose([T.RandomCrop(4, padding=1), T.RandomHorizontalFlip()])
    ds = indexed(40, 2, 4, 4, transform=tf)
    serial = [(x.data, y.data) for x, y in DataLoader(ds, 6, shuffle=True, seed=11)]
    threaded = [(x.data, y.data) for x, y in DataLoader(ds, 6, shuffle=True, seed=11,
                                                        num_workers=workers, prefetch_factor=2)]
    assert len(serial) == len(threaded) == 7
    for (xa, ya), (xb, yb) in zip(serial, threaded):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_workers_break_early_and_resume():
    loader = DataLoader(indexed(50), 5, shuffle=True, seed=2, num_workers=2)
    expected = order_of(DataLoader(indexed(50), 5, shuffle=True, seed=2))
    seen = []
    for x, _ in loader:
        seen += [int(v) for v in x.data[:, 0, 0, 0]]
        if len(seen) == 15:
            break
    assert loader.state_dict()["batches_done"] == 3
    seen += order_of(loader)  # the same loader continues the interrupted epoch
    assert seen == expected


def test_transform_randomness_is_seeded():
    ds = indexed(16, 1, 6, 6, transform=T.RandomRotation(30))
    a = [x.data for x, _ in DataLoader(ds, 4, seed=0)]
    b = [x.data for x, _ in DataLoader(ds, 4, seed=0)]
    c = [x.data for x, _ in DataLoader(ds, 4, seed=1)]
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not all(np.array_equal(p, q) for p, q in zip(a, c))


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"DataLoader: batch_size must be an integer >= 1, got 0"):
        DataLoader(indexed(3), 0)
    with pytest.raises(ValueError, match=r"DataLoader: num_workers must be an integer >= 0, got -1"):
        DataLoader(indexed(3), 1, num_workers=-1)
    with pytest.raises(TypeError, match=r"DataLoader: expected a dataset with __len__ and __getitem__, got int"):
        DataLoader(5, 1)


def test_ragged_batch_message():
    class Ragged(PlainDataset):
        def __getitem__(self, i):
            return np.zeros((1, 2 + i, 2), np.float32), 0

    with pytest.raises(ValueError, match=r"Ragged: images in one batch must have the same shape.*Resize/CenterCrop"):
        list(DataLoader(Ragged(3), 3))
