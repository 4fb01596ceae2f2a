"""Shapes: a procedural image dataset that needs no files (the offline default for training).

Ten classes of geometric figures, each drawn at a random position, size and rotation, with random
brightness (or colour), a soft lighting gradient and pixel noise:

    0 circle   1 square   2 triangle   3 cross    4 stripes
    5 ring     6 frame    7 star       8 ellipse  9 crescent

    train = data.Shapes()                 # 10,000 images, 1 x 28 x 28, float32 in [0, 1]
    test = data.Shapes(train=False)       # 2,000 images drawn with a different seed

Position, size and rotation vary, so a linear classifier on raw pixels does poorly (it cannot
"slide" a template), while a small CNN, whose filters are the same everywhere, learns it.
Measured on the default 10,000 / 2,000 split (1 x 28 x 28): a least-squares linear classifier on
the pixels reaches 25% test accuracy (chance is 10%); the same classifier on translation-invariant
features (|FFT|) 83%; LeNet-5 (Adam, lr 2e-3, batch 64) 55%, 70% and 83% after epochs 1, 2, 3,
still climbing (the round figures - circle, square, ellipse, triangle - are the hard ones).

How an image is drawn (all images at once, no Python loop per pixel):
  1. every pixel centre (x, y) is mapped into the figure's own unit frame:
         (u, v) = R(-theta) @ ((x, y) - centre) / radius
  2. each class is a signed distance d(u, v): negative inside the figure, positive outside,
     in units of `radius` (so d * radius is roughly the distance in pixels);
  3. coverage alpha = clip(0.5 - d * radius, 0, 1): a one-pixel soft (anti-aliased) edge;
  4. image = background + (foreground - background) * alpha + gradient + noise, clipped to [0, 1].
"""
import numpy as np

from .dataset import ArrayDataset

CLASSES = ["circle", "square", "triangle", "cross", "stripes",
           "ring", "frame", "star", "ellipse", "crescent"]
_CHUNK = 2048  # images drawn at a time (fixed: the random draws depend on it)


# ---- signed distances in the unit frame (negative inside) ---------------------------------------

def _circle(u, v):
    return np.hypot(u, v) - 0.8


def _square(u, v):
    return np.maximum(np.abs(u), np.abs(v)) - 0.62


def _triangle(u, v):
    # equilateral, circumradius 1: inside all three edges, each at distance 1 / 2 from the centre
    d = None
    for k in range(3):
        a = np.pi / 2 + 2 * np.pi * k / 3 + np.pi / 3  # outward normal of edge k
        e = u * np.cos(a) + v * np.sin(a) - 0.5
        d = e if d is None else np.maximum(d, e)
    return d


def _cross(u, v):
    au, av = np.abs(u), np.abs(v)
    bar1 = np.maximum(au - 0.9, av - 0.22)
    bar2 = np.maximum(au - 0.22, av - 0.9)
    return np.minimum(bar1, bar2)


def _stripes(u, v):
    # three bars across a disk: the disk intersected with a periodic band pattern along u
    period = 0.5
    band = (np.abs((u / period) % 1.0 - 0.5) - 0.25) * period
    return np.maximum(np.hypot(u, v) - 0.9, band)


def _ring(u, v):
    return np.abs(np.hypot(u, v) - 0.68) - 0.2


def _frame(u, v):
    # a square outline: corners tell it from the ring, the hole from the square
    return np.abs(np.maximum(np.abs(u), np.abs(v)) - 0.6) - 0.17


def _star(u, v):
    # five points: fold the plane into the wedge [0, 36 deg] between a tip and a notch, then
    # measure the distance to the edge from the tip A (radius 1) to the notch B (radius 0.42)
    phi = np.arctan2(v, u) % (2 * np.pi / 5)
    phi = np.minimum(phi, 2 * np.pi / 5 - phi)
    r = np.hypot(u, v)
    qx, qy = r * np.cos(phi), r * np.sin(phi)
    ax, ay = 1.0, 0.0
    bx, by = 0.42 * np.cos(np.pi / 5), 0.42 * np.sin(np.pi / 5)
    nx, ny = by - ay, ax - bx  # normal of AB pointing away from the centre
    norm = np.hypot(nx, ny)
    return ((qx - ax) * nx + (qy - ay) * ny) / norm


def _ellipse(u, v):
    a, b = 0.95, 0.4
    return (np.hypot(u / a, v / b) - 1.0) * b


def _crescent(u, v):
    # a disk with a shifted disk cut out of it
    return np.maximum(np.hypot(u, v) - 0.85, -(np.hypot(u - 0.45, v) - 0.7))


SDF = [_circle, _square, _triangle, _cross, _stripes, _ring, _frame, _star, _ellipse, _crescent]


def render(labels, centre, radius, theta, fg, bg, gradient, noise, size):
    """Draw one image per label. Shapes: labels, radius, theta (N,); centre (N, 2) as (x, y) in
    pixels; fg, bg (N, C) colours; gradient (N, C, 2) brightness change per pixel along (x, y);
    noise (N, C, size, size). Returns float32 (N, C, size, size) in [0, 1]."""
    grid = np.arange(size, dtype=np.float32) + 0.5          # pixel centres
    dx = grid[None, None, :] - centre[:, 0, None, None]     # (N, 1, size)
    dy = grid[None, :, None] - centre[:, 1, None, None]     # (N, size, 1)
    c, s = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    r = radius[:, None, None]
    u = (c * dx + s * dy) / r                               # rotate by -theta, scale by 1/radius
    v = (-s * dx + c * dy) / r
    d = np.empty(u.shape, dtype=np.float32)
    for k, sdf in enumerate(SDF):
        rows = labels == k
        if rows.any():
            d[rows] = sdf(u[rows], v[rows])
    alpha = np.clip(0.5 - d * r, 0.0, 1.0)[:, None]          # (N, 1, size, size)
    images = bg[:, :, None, None] + (fg - bg)[:, :, None, None] * alpha
    centred = grid - size / 2.0
    images += (gradient[:, :, 0, None, None] * centred[None, None, None, :]
               + gradient[:, :, 1, None, None] * centred[None, None, :, None])
    images += noise
    return np.clip(images, 0.0, 1.0).astype(np.float32)


class Shapes(ArrayDataset):
    """Ten procedural shape classes; see the module docstring.

    Arguments: `n` images (default 10,000 for train, 2,000 for test), `train` picks the split
    (train and test use different seeds derived from `seed`), `size` 28 or 32 (any size >= 16
    works), `channels` 1 (grey, bright figure on a dark background) or 3 (random colours),
    `noise` the standard deviation of the pixel noise, `transform` as in any dataset.
    `images` float32 (n, channels, size, size) in [0, 1]; `labels` int64, balanced over classes.
    """

    classes = list(CLASSES)

    def __init__(self, n=None, train=True, size=28, channels=1, seed=0, transform=None,
                 noise=0.08):
        if n is None:
            n = 10000 if train else 2000
        if int(n) < 0 or int(size) < 16 or channels not in (1, 3):
            raise ValueError(f"Shapes: expected n >= 0, size >= 16 and channels 1 or 3, "
                             f"got n={n}, size={size}, channels={channels}")
        n, size = int(n), int(size)
        self.train, self.size, self.seed, self.noise = bool(train), size, seed, float(noise)
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0 if train else 1]))
        labels = rng.permutation(np.arange(n) % len(CLASSES))
        images = np.empty((n, channels, size, size), dtype=np.float32)
        for start in range(0, n, _CHUNK):  # bounded memory for the (chunk, size, size) grids
            stop = min(start + _CHUNK, n)
            images[start:stop] = self._draw(rng, labels[start:stop], size, channels)
        super().__init__(images, labels, transform=transform, classes=CLASSES)

    def _draw(self, rng, labels, size, channels):
        m = len(labels)
        radius = rng.uniform(0.28, 0.45, m) * size
        margin = 0.9 * radius  # figures may touch the border but stay mostly in view
        centre = np.stack([rng.uniform(margin, size - margin), rng.uniform(margin, size - margin)], 1)
        theta = rng.uniform(0, 2 * np.pi, m)
        if channels == 1:
            fg, bg = rng.uniform(0.6, 1.0, (m, 1)), rng.uniform(0.0, 0.3, (m, 1))
        else:  # random colours; make sure figure and background differ clearly in some channel
            fg, bg = rng.uniform(0.0, 1.0, (m, 3)), rng.uniform(0.0, 1.0, (m, 3))
            weak = np.abs(fg - bg).max(axis=1) < 0.4
            bg[weak] = 1.0 - np.round(fg[weak])
        gradient = rng.uniform(-0.15, 0.15, (m, channels, 2)) / size
        noise = rng.standard_normal((m, channels, size, size), dtype=np.float32) * np.float32(self.noise)
        return render(labels, centre.astype(np.float32), radius.astype(np.float32),
                      theta.astype(np.float32), fg.astype(np.float32), bg.astype(np.float32),
                      gradient.astype(np.float32), noise, size)

    def __repr__(self):
        split = "train" if self.train else "test"
        return (f"Shapes({split}, n={len(self)}, size={self.size}, channels={self.images.shape[1]}, "
                f"seed={self.seed}, transform={self.transform!r})")
