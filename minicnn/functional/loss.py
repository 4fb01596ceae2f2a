"""Placeholder: being written."""
def cross_entropy(*args, **kwargs):
    raise NotImplementedError('cross_entropy')

def log_softmax(*args, **kwargs):
    raise NotImplementedError('log_softmax')

def mse_loss(*args, **kwargs):
    raise NotImplementedError('mse_loss')

def nll_loss(*args, **kwargs):
    raise NotImplementedError('nll_loss')

def softmax(*args, **kwargs):
    raise NotImplementedError('softmax')

