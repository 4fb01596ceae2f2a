"""Placeholder: being written."""
def batch_norm(*args, **kwargs):
    raise NotImplementedError('batch_norm')

def local_response_norm(*args, **kwargs):
    raise NotImplementedError('local_response_norm')

