"""Placeholder: being written."""
def adaptive_avg_pool2d(*args, **kwargs):
    raise NotImplementedError('adaptive_avg_pool2d')

def avg_pool2d(*args, **kwargs):
    raise NotImplementedError('avg_pool2d')

def global_avg_pool2d(*args, **kwargs):
    raise NotImplementedError('global_avg_pool2d')

def max_pool2d(*args, **kwargs):
    raise NotImplementedError('max_pool2d')

