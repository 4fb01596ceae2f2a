"""minicnn.distributed in one process: the fake two-rank world (threads), the buckets, the
sampler, the loader with a sampler, and a world of one. Real `mpiexec` runs:
tests/test_distributed_mpi.py."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
import minicnn.distributed as dist
from minicnn import data, nn, optim, train
from minicnn.distributed import launch
from minicnn.distributed.optimizer import plan_buckets

from distributed_cases import equivalence, reference, short_training, small_cnn


def rel_err(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


# ---- equivalence: 2 ranks on half a batch == 1 process on the whole batch ----------------------
def test_two_fake_ranks_on_half_batches_equal_one_process_on_the_whole_batch():
    want = reference()
    got = dist.FakeWorld(2).run(equivalence)
    for name, value in want.items():
        assert rel_err(got[0][name], value) < 1e-10, name
        np.testing.assert_array_equal(got[0][name], got[1][name])   # ranks bit-identical
    # the steps moved the weights: the comparison is not of the initial values
    start = small_cnn().double()
    assert all(got[0][n].shape == p.shape for n, p in start.named_parameters())


def test_without_averaging_the_ranks_drift_apart():
    """The control: the same steps with a plain optimiser give each rank other weights."""
    def plain(comm):
        from distributed_cases import float64_model, run_steps, sgd
        model = float64_model(seed=0)
        return run_steps(model, sgd(model), comm.rank, comm.size)
    got = dist.FakeWorld(2).run(plain)
    assert any(rel_err(got[0][n], got[1][n]) > 1e-3 for n in got[0])


def test_four_fake_ranks_also_match_one_process():
    want = reference()
    got = dist.FakeWorld(4).run(lambda comm: equivalence(comm, bucket_mb=25))
    for name, value in want.items():
        assert rel_err(got[3][name], value) < 1e-10, name


# ---- bit-identical parameters after a short training with dropout and batch norm ---------------
def test_fit_on_two_fake_ranks_leaves_identical_parameters_and_metrics():
    (hash0, history0), (hash1, history1) = dist.FakeWorld(2).run(short_training)
    assert hash0 == hash1
    assert [r["val_top1"] for r in history0] == [r["val_top1"] for r in history1]
    assert [r["train_loss"] for r in history0] == [r["train_loss"] for r in history1]


def test_a_checkpoint_of_two_ranks_resumes_in_one_process(tmp_path):
    dist.FakeWorld(2).run(lambda comm: short_training(comm, epochs=1, out_dir=tmp_path))
    ckpt = train.load_checkpoint(tmp_path / train.CHECKPOINT)
    assert len(ckpt["ranks"]) == 2 and ckpt["loaders"] == {}
    assert not (tmp_path / train.INTERRUPTED).exists()
    mc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 5), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Dropout(0.3), nn.Linear(6 * 6 * 6, 10))
    shapes = data.Shapes(n=96, train=True, size=16, channels=1, seed=0)
    history = train.fit(model, optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
                        data.DataLoader(shapes, batch_size=16, shuffle=True), epochs=2,
                        quiet=True, resume=tmp_path / train.CHECKPOINT, plot=False)
    assert [r["epoch"] for r in history] == [1, 2]


def test_validation_metrics_count_every_sample_once():
    """evaluate() over two shards (pad=False) equals evaluate() over the whole set."""
    mc.manual_seed(0)
    model = small_cnn()
    val = data.ArrayDataset(np.random.default_rng(1).standard_normal((13, 1, 8, 8)),
                            np.arange(13) % 3)
    whole = train.evaluate(model, data.DataLoader(val, batch_size=4))

    def shard(comm):
        sampler = data.DistributedSampler(val, comm.size, comm.rank, shuffle=False, pad=False)
        return train.evaluate(model, data.DataLoader(val, batch_size=4, sampler=sampler), comm=comm)
    for got in dist.FakeWorld(2).run(shard):
        assert got.top1 == whole.top1 and got.top5 == whole.top5
        assert got.loss == pytest.approx(whole.loss, rel=1e-6)


# ---- the buckets ---------------------------------------------------------------------------------
def test_buckets_keep_order_respect_the_size_and_split_dtypes():
    params = [nn.Parameter(np.zeros(n, np.float32)) for n in (10, 300, 5, 1000)]
    params.append(nn.Parameter(np.zeros(7, np.float64), dtype=np.float64))
    buckets = plan_buckets(params, bucket_bytes=1300)
    assert [len(b.params) for b in buckets] == [3, 1, 1]   # 40+1200+20 B | 4000 B alone | f64
    assert [p for b in buckets for p in b.params] == params
    assert buckets[-1].dtype == np.float64


def test_a_parameter_without_gradient_on_one_rank_gets_the_mean_and_none_stays_none():
    def step(comm):
        a = nn.Parameter(np.zeros(3))
        b = nn.Parameter(np.zeros(2))
        opt = dist.DistributedOptimizer(optim.SGD([a, b], lr=1.0), comm=comm)
        a.grad = np.full(3, 2.0) if comm.rank == 0 else None   # only rank 0 used `a`
        opt.synchronize()
        return a.grad, b.grad
    (a0, b0), (a1, b1) = dist.FakeWorld(2).run(step)
    np.testing.assert_array_equal(a0, [1.0, 1.0, 1.0])   # (2 + 0) / 2, as DDP
    np.testing.assert_array_equal(a1, a0)
    assert b0 is None and b1 is None


def test_averaging_is_in_place_and_the_wrapper_keeps_the_optimiser_interface():
    def step(comm):
        p = nn.Parameter(np.zeros(4))
        inner = optim.SGD([p], lr=0.5, momentum=0.9)
        opt = dist.DistributedOptimizer(inner, comm=comm)
        p.grad = np.full(4, float(comm.rank), np.float32)
        grad = p.grad
        opt.step()
        assert p.grad is grad and opt.param_groups is inner.param_groups
        optim.lr_scheduler.StepLR(opt, step_size=1)   # schedulers accept it
        return p.numpy(), opt.state_dict()["state"][0]["momentum_buffer"]
    (p0, m0), (p1, m1) = dist.FakeWorld(2).run(step)
    np.testing.assert_array_equal(p0, np.full(4, -0.25))   # lr * mean(0, 1)
    np.testing.assert_array_equal(p1, p0)
    np.testing.assert_array_equal(m0, m1)


def test_different_models_on_two_ranks_are_refused_naming_the_parameter():
    def build(comm):
        model = small_cnn() if comm.rank == 0 else nn.Sequential(nn.Linear(3, 2))
        dist.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.1), model, comm=comm)
    with pytest.raises(RuntimeError, match="rank 1 .*ValueError.*rank 0 has"):
        dist.FakeWorld(2).run(build)


def test_broadcast_parameters_copies_weights_and_buffers_from_the_root():
    def build(comm):
        mc.manual_seed(comm.rank)
        model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
        model[1].running_mean.data[...] = comm.rank + 1.0
        dist.broadcast_parameters(model, root=1, comm=comm)
        return model.state_dict()
    s0, s1 = dist.FakeWorld(2).run(build)
    for name in s0:
        np.testing.assert_array_equal(s0[name], s1[name])
    np.testing.assert_array_equal(s0["1.running_mean"], [2.0, 2.0])


def test_broadcast_object_and_a_failing_rank_ends_the_fake_world():
    assert dist.FakeWorld(3).run(lambda c: dist.broadcast_object({"seed": c.rank}, root=2, comm=c)) \
        == [{"seed": 2}] * 3

    def fail(comm):
        if comm.rank == 1:
            raise KeyError("boom")
        comm.Allreduce(np.zeros(2))   # would wait forever for rank 1
    with pytest.raises(RuntimeError, match="rank 1 of 2 raised KeyError"):
        dist.FakeWorld(2, timeout=30).run(fail)


# ---- a world of one ------------------------------------------------------------------------------
def test_init_outside_mpi_is_a_world_of_one(monkeypatch):
    for name in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(launch, "_world", [])
    comm = dist.init()
    assert (comm.size, dist.rank(), dist.world_size(), dist.is_main()) == (1, 0, 1, True)
    x = np.arange(3.0)
    assert comm.Allreduce(x) is x and list(x) == [0, 1, 2]
    assert dist.broadcast_object("seed") == "seed"


def test_threads_per_rank_share_the_cores_and_can_be_overridden():
    two = dist.FakeWorld(2).comms[0]
    assert dist.threads_per_rank(two) == max(1, launch.available_cores() // 2)
    assert dist.threads_per_rank(two, "3") == 3
    with pytest.raises(ValueError, match="MINICNN_THREADS"):
        dist.threads_per_rank(two, "zero")


# ---- the sampler -----------------------------------------------------------------------------------
@given(n=st.integers(1, 60), ranks=st.integers(1, 5), seed=st.integers(0, 3),
       epoch=st.integers(0, 3), shuffle=st.booleans())
def test_sampler_shards_are_disjoint_cover_the_data_and_have_equal_lengths(n, ranks, seed, epoch,
                                                                             shuffle):
    dataset = list(range(n))
    shards = []
    for r in range(ranks):
        s = data.DistributedSampler(dataset, ranks, r, shuffle=shuffle, seed=seed)
        s.set_epoch(epoch)
        shards.append(list(s))
        assert len(shards[-1]) == len(s) == -(-n // ranks)           # ceil(n / R) each
    together = [i for shard in shards for i in shard]
    assert set(together) == set(range(n))                             # the union covers the data
    assert len(together) - len(set(together)) == len(together) - n   # repeats: only the padding
    if n % ranks == 0:
        assert len(set(together)) == len(together)                    # then strictly disjoint


@given(n=st.integers(1, 60), ranks=st.integers(1, 5))
def test_sampler_without_padding_gives_every_sample_exactly_once(n, ranks):
    shards = [list(data.DistributedSampler(range(n), ranks, r, shuffle=True, pad=False))
              for r in range(ranks)]
    assert sorted(i for s in shards for i in s) == list(range(n))
    dropped = [list(data.DistributedSampler(range(n), ranks, r, drop_last=True)) for r in range(ranks)]
    assert {len(s) for s in dropped} == {n // ranks}


def test_sampler_order_changes_with_the_epoch_and_repeats_for_the_same_seed_and_epoch():
    def order(epoch, seed=0, rank=0):
        s = data.DistributedSampler(range(100), 2, rank, seed=seed)
        s.set_epoch(epoch)
        return list(s)
    assert order(1) != order(2)
    assert order(1) == order(1)
    assert order(1, seed=1) != order(1)
    full = data.DistributedSampler(range(100), 1, 0, seed=0)
    full.set_epoch(3)
    assert sorted(order(3, rank=0) + order(3, rank=1)) == sorted(full)   # one permutation


def test_sampler_checks_its_arguments():
    with pytest.raises(ValueError, match="rank must be in \\[0, 1\\]"):
        data.DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_replicas must be an integer >= 1"):
        data.DistributedSampler(range(4), num_replicas=0, rank=0)
    with pytest.raises(ValueError, match="set_epoch: expected an integer >= 0"):
        data.DistributedSampler(range(4), 1, 0).set_epoch(-1)


# ---- the loader with a sampler -------------------------------------------------------------------
def test_loader_takes_a_sampler_its_order_length_and_resume():
    images = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    ds = data.ArrayDataset(images, np.arange(10) % 2)
    sampler = data.DistributedSampler(ds, 2, 1, shuffle=True, seed=4)
    loader = data.DataLoader(ds, batch_size=2, sampler=sampler)
    assert len(loader) == 3
    sampler.set_epoch(1)
    seen = [x.data.ravel().astype(int).tolist() for x, _ in loader]
    assert [i for b in seen for i in b] == list(sampler)
    sampler.set_epoch(2)
    it = iter(loader)
    first = next(it)[0].data.ravel().tolist()
    state = loader.state_dict()
    rest = [x.data.ravel().tolist() for x, _ in it]
    again = data.DataLoader(ds, batch_size=2, sampler=data.DistributedSampler(ds, 2, 1, seed=4))
    again.load_state_dict(state)
    assert [x.data.ravel().tolist() for x, _ in again] == rest and first not in rest
    with pytest.raises(ValueError, match="sampler and shuffle=True exclude each other"):
        data.DataLoader(ds, batch_size=2, sampler=sampler, shuffle=True)
