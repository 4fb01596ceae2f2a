"""nn.SyncBatchNorm: batch statistics over every rank. Two fake ranks on half batches train
exactly as one process with BatchNorm on the whole batch (float64, SGD momentum)."""
import numpy as np
import pytest

import minicnn as mc
import minicnn.distributed as dist
import minicnn.functional as F
from minicnn import nn, optim
from minicnn.nn.sync_batchnorm import SyncBatchNormFunction, global_moments

from distributed_cases import batches


def bn_model(seed=0):
    mc.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4, momentum=None), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 3)).double()


def train(model, optimizer, rank=0, size=1):
    for x, y in batches(seed=9):
        share = len(y) // size
        x, y = x[rank * share:(rank + 1) * share], y[rank * share:(rank + 1) * share]
        optimizer.zero_grad()
        F.cross_entropy(model(mc.Tensor(x, dtype=x.dtype)), y).backward()
        optimizer.step()
    return model.state_dict()


def test_two_ranks_with_sync_batchnorm_equal_one_process_with_batchnorm():
    want = (lambda m: train(m, optim.SGD(m.parameters(), lr=0.1, momentum=0.9)))(bn_model())

    def rank(comm):
        model = nn.SyncBatchNorm.convert_sync_batchnorm(bn_model(), comm=comm)
        assert isinstance(model[1], nn.SyncBatchNorm)
        opt = dist.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.1, momentum=0.9), model,
                                        comm=comm)
        return train(model, opt, comm.rank, comm.size)
    got = dist.FakeWorld(2).run(rank)
    for name, value in want.items():
        if value.dtype.kind == "f":
            err = np.max(np.abs(got[0][name] - value)) / np.max(np.abs(value))
            assert err < 1e-10, (name, err)       # running statistics included
        else:
            assert got[0][name] == value          # num_batches_tracked
        np.testing.assert_array_equal(got[1][name], got[0][name])


def test_plain_batchnorm_on_two_ranks_differs_from_the_whole_batch():
    """The control: per-rank statistics do not give the whole batch's steps."""
    want = (lambda m: train(m, optim.SGD(m.parameters(), lr=0.1, momentum=0.9)))(bn_model())

    def rank(comm):
        model = bn_model()
        opt = dist.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.1, momentum=0.9), model,
                                        comm=comm)
        return train(model, opt, comm.rank, comm.size)
    got = dist.FakeWorld(2).run(rank)
    assert np.max(np.abs(got[0]["5.weight"] - want["5.weight"])) > 1e-6


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 4, 5)])
def test_in_one_process_it_is_batchnorm_forward_and_backward(shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    r = rng.standard_normal(shape)
    results = []
    for layer in (nn.SyncBatchNorm(3, dtype=np.float64), (nn.BatchNorm1d if len(shape) < 4 else
                                                          nn.BatchNorm2d)(3, dtype=np.float64)):
        layer.weight.data[...] = [0.5, 2.0, -1.0]
        layer.bias.data[...] = [0.1, 0.2, 0.3]
        xt = mc.Tensor(x, requires_grad=True, dtype=np.float64)
        (layer(xt) * mc.Tensor(r, dtype=np.float64)).sum().backward()
        results.append((layer(mc.Tensor(x, dtype=np.float64)).numpy(), xt.grad, layer.weight.grad,
                        layer.bias.grad, layer.running_mean.numpy(), layer.running_var.numpy()))
        layer.eval()
        results[-1] += (layer(mc.Tensor(x, dtype=np.float64)).numpy(),)
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_gradcheck_of_the_sync_batchnorm_function():
    """The backward carries the statistics' dependence on x, which forward takes as constants."""
    comm = dist.SingleComm()

    def sync_bn(a, w, b):
        mean, var, count = global_moments(a.data, comm)
        return SyncBatchNormFunction.apply(a, w, b, mean=mean, var=var, count=count, eps=1e-5,
                                           comm=comm)
    rng = np.random.default_rng(3)
    x, w, b = (mc.Tensor(v, requires_grad=True, dtype=np.float64)
               for v in (rng.standard_normal((3, 2, 2, 2)), [1.5, -0.7], [0.2, 0.1]))
    assert mc.gradcheck(sync_bn, [x, w, b])


def test_sync_batchnorm_checks_its_input():
    with pytest.raises(ValueError, match="SyncBatchNorm: expected 3 channels"):
        nn.SyncBatchNorm(3)(mc.zeros(4, 2, 3, 3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.SyncBatchNorm(3)(mc.zeros(1, 3))
