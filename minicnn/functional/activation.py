"""Placeholder: being written."""
def elu(*args, **kwargs):
    raise NotImplementedError('elu')

def leaky_relu(*args, **kwargs):
    raise NotImplementedError('leaky_relu')

def maxout(*args, **kwargs):
    raise NotImplementedError('maxout')

def relu(*args, **kwargs):
    raise NotImplementedError('relu')

def sigmoid(*args, **kwargs):
    raise NotImplementedError('sigmoid')

def tanh(*args, **kwargs):
    raise NotImplementedError('tanh')

