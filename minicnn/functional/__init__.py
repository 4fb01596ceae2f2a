"""Every differentiable op, as plain functions on Tensors. Each is a Function subclass with its
forward and backward written by hand; the hot loops are in minicnn.kernels."""
from .basic import abs, exp, log, matmul, sqrt  # noqa: A004
from .shape import concat, flatten, pad2d
from .conv import conv1d, conv2d, linear
from .pool import adaptive_avg_pool2d, avg_pool2d, global_avg_pool2d, max_pool2d
from .activation import elu, leaky_relu, maxout, relu, sigmoid, tanh
from .loss import cross_entropy, log_softmax, mse_loss, nll_loss, softmax
from .dropout import dropout, dropout2d
from .norm import batch_norm, local_response_norm
