"""Image transforms on float32 arrays of shape (C, H, W), as torchvision's.

Legend: C channels, H/W input height/width, th/tw target (output) height/width.

    train_tf = Compose([RandomCrop(28, padding=2), RandomHorizontalFlip(), Normalize((0.5,), (0.5,))])
    x = train_tf(image)          # image: float32 (C, H, W)

Randomness: a random transform draws from the generator given as `rng=...`; otherwise from the
generator of the DataLoader batch being built (see `rng_scope`), otherwise from the global one,
`minicnn.random.get_rng()`, so `mc.manual_seed(s)` makes augmentation repeatable.

Resizing and rotation are written by hand with NumPy: bilinear interpolation with the half-pixel
convention (`align_corners=False`, as PyTorch and torchvision): output pixel centre `o` samples
the input at `(o + 0.5) * in / out - 0.5`. There is no anti-aliasing filter, so shrinking an image
by a large factor skips pixels rather than averaging them.
"""
import contextlib
import math
import numbers
import threading

import numpy as np

from ..functional._args import positive_pair
from ..random import get_rng

__all__ = ["Compose", "Normalize", "RandomCrop", "RandomHorizontalFlip", "RandomVerticalFlip",
           "RandomResizedCrop", "RandomRotation", "Resize", "CenterCrop", "ToFloat", "PCALighting",
           "Lambda", "resize", "rotate", "crop", "pad", "rng_scope",
           "IMAGENET_EIGVAL", "IMAGENET_EIGVEC", "IMAGENET_MEAN", "IMAGENET_STD"]

# ---- where random transforms get their random numbers -------------------------------------------

_local = threading.local()


@contextlib.contextmanager
def rng_scope(rng):
    """Within this block (in this thread), random transforms without their own `rng` draw from
    `rng`. The DataLoader gives every batch its own generator this way, so augmentation is the
    same whether batches are built in the main thread or in background threads."""
    previous = getattr(_local, "rng", None)
    _local.rng = rng
    try:
        yield rng
    finally:
        _local.rng = previous


def _rng(own):
    if own is not None:
        return own
    scoped = getattr(_local, "rng", None)
    return scoped if scoped is not None else get_rng()


# ---- checks ----------------------------------------------------------------------------------------

def _check_image(name, img):
    if not isinstance(img, np.ndarray) or img.ndim != 3:
        shape = getattr(img, "shape", type(img).__name__)
        raise ValueError(f"{name}: expected an image array of shape (C, H, W), got {shape}")
    return img


# ---- plain functions (the transforms below call these) -------------------------------------------

def crop(img, top, left, height, width):
    """img[:, top:top+height, left:left+width] (a copy)."""
    return img[:, top:top + height, left:left + width].copy()


def pad(img, padding, fill=0.0):
    """Pad the two spatial axes. `padding`: int, (left/right, top/bottom) or (left, top, right, bottom),
    torchvision's order."""
    if isinstance(padding, numbers.Integral):
        padding = (padding,) * 4
    padding = tuple(int(p) for p in padding)
    if len(padding) == 2:
        padding = (padding[0], padding[1], padding[0], padding[1])
    if len(padding) != 4 or min(padding) < 0:
        raise ValueError(f"pad: expected padding as an int, 2 or 4 non-negative ints, got {padding}")
    left, top, right, bottom = padding
    return np.pad(img, ((0, 0), (top, bottom), (left, right)), constant_values=fill)


def _bilinear(img, ys, xs, fill=None):
    """Sample img (C, H, W) at real-valued positions ys, xs (same shape S) -> (C, *S).

    Each sample mixes the four surrounding pixels with weights (1-dy)(1-dx), (1-dy)dx, dy(1-dx),
    dy dx, where dy, dx are the fractional parts of the position. With `fill=None` positions are clamped to the image (edges repeat); otherwise samples
    outside the image take the value `fill` (neighbours off the image count as `fill`).
    """
    C, H, W = img.shape
    y0, x0 = np.floor(ys), np.floor(xs)
    dy, dx = (ys - y0).astype(img.dtype), (xs - x0).astype(img.dtype)
    y0, x0 = y0.astype(np.int64), x0.astype(np.int64)
    if fill is None:
        y0c, y1c = np.clip(y0, 0, H - 1), np.clip(y0 + 1, 0, H - 1)
        x0c, x1c = np.clip(x0, 0, W - 1), np.clip(x0 + 1, 0, W - 1)
        src = img
    else:  # pad by one pixel of `fill` so neighbours just off the image read `fill`
        src = np.pad(img, ((0, 0), (1, 1), (1, 1)), constant_values=fill)
        y0c, y1c = np.clip(y0 + 1, 0, H + 1), np.clip(y0 + 2, 0, H + 1)
        x0c, x1c = np.clip(x0 + 1, 0, W + 1), np.clip(x0 + 2, 0, W + 1)
    # interpolate along x in the two rows, then along y (lerp form: a constant stays exact)
    top = src[:, y0c, x0c] + (src[:, y0c, x1c] - src[:, y0c, x0c]) * dx
    bottom = src[:, y1c, x0c] + (src[:, y1c, x1c] - src[:, y1c, x0c]) * dx
    out = top + (bottom - top) * dy
    if fill is not None:  # far outside: all four neighbours were clamped to the border of fill
        outside = (ys < -1) | (ys > H) | (xs < -1) | (xs > W)
        out[:, outside] = fill
    return out.astype(img.dtype, copy=False)


def resize(img, size):
    """Bilinear resize of img (C, H, W) to (C, th, tw), half-pixel centres (align_corners=False)."""
    _check_image("resize", img)
    C, H, W = img.shape
    th, tw = positive_pair("resize", "size", size)
    # centre of output pixel o sits at input coordinate (o + 0.5) * H / th - 0.5
    ys = (np.arange(th) + 0.5) * (H / th) - 0.5
    xs = (np.arange(tw) + 0.5) * (W / tw) - 0.5
    ys, xs = np.clip(ys, 0, H - 1), np.clip(xs, 0, W - 1)
    return _bilinear(img, ys[:, None], xs[None, :])


def rotate(img, angle, fill=0.0):
    """Rotate img (C, H, W) by `angle` degrees counter-clockwise about its centre (torchvision's
    direction), bilinear; corners that come from outside the image take `fill`."""
    _check_image("rotate", img)
    C, H, W = img.shape
    cy, cx = (H - 1) / 2.0, (W - 1) / 2.0
    t = math.radians(angle)
    c, s = math.cos(t), math.sin(t)
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    # inverse map: which input point lands on output pixel (y, x)? Rows grow downwards, so a
    # counter-clockwise turn on screen is x' = c x + s y, y' = -s x + c y in centred coordinates.
    xs = cx + c * (x - cx) - s * (y - cy)
    ys = cy + s * (x - cx) + c * (y - cy)
    return _bilinear(img, ys, xs, fill=fill)


def center_crop_box(H, W, th, tw):
    """(top, left) of a centred th x tw crop, rounded as torchvision rounds."""
    return int(round((H - th) / 2.0)), int(round((W - tw) / 2.0))


# ---- the transforms --------------------------------------------------------------------------------

class Compose:
    """Apply transforms one after another."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self):
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose([{inner}\n])"


class Lambda:
    """Wrap a function of one image as a transform."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, img):
        return self.fn(img)

    def __repr__(self):
        return f"Lambda({self.fn!r})"


class ToFloat:
    """An image as float32 (C, H, W): uint8 is scaled by 1/255, (H, W, C) or (H, W) arrays and PIL
    images are moved to channels-first, as torchvision's ToTensor."""

    def __call__(self, img):
        if hasattr(img, "getbands"):  # a PIL image
            img = np.asarray(img)
        img = np.asarray(img)
        if img.ndim == 2:
            img = img[None]
        elif img.ndim == 3 and img.shape[-1] in (1, 3, 4) and img.shape[0] not in (1, 3, 4):
            img = img.transpose(2, 0, 1)
        elif img.ndim != 3:
            raise ValueError(f"ToFloat: expected an image of shape (H, W), (H, W, C) or (C, H, W), "
                             f"got {img.shape}")
        scale = 1.0 / 255.0 if img.dtype == np.uint8 else 1.0
        return np.ascontiguousarray(img, dtype=np.float32) * np.float32(scale)

    def __repr__(self):
        return "ToFloat()"


class Normalize:
    """(img - mean[c]) / std[c] per channel, as torchvision's Normalize."""

    def __init__(self, mean, std):
        self.mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        self.std = np.atleast_1d(np.asarray(std, dtype=np.float64))
        if self.mean.ndim != 1 or self.std.ndim != 1:
            raise ValueError(f"Normalize: expected one mean and std per channel, got mean "
                             f"{self.mean.shape} and std {self.std.shape}")
        if np.any(self.std == 0):
            raise ValueError(f"Normalize: std must be non-zero, got {self.std.tolist()}")

    def __call__(self, img):
        _check_image("Normalize", img)
        C = img.shape[0]
        if len(self.mean) not in (1, C) or len(self.std) not in (1, C):
            raise ValueError(f"Normalize: image has {C} channels, got {len(self.mean)} means and "
                             f"{len(self.std)} stds")
        mean = self.mean.astype(img.dtype).reshape(-1, 1, 1)
        std = self.std.astype(img.dtype).reshape(-1, 1, 1)
        return (img - mean) / std

    def __repr__(self):
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class CenterCrop:
    """The centre th x tw of the image; zero-padded first when the image is smaller (torchvision)."""

    def __init__(self, size):
        self.size = positive_pair("CenterCrop", "size", size)

    def __call__(self, img):
        _check_image("CenterCrop", img)
        th, tw = self.size
        _, H, W = img.shape
        if th > H or tw > W:  # pad evenly to at least the crop size, as torchvision does
            ph, pw = max(th - H, 0), max(tw - W, 0)
            img = pad(img, (pw // 2, ph // 2, (pw + 1) // 2, (ph + 1) // 2))
            _, H, W = img.shape
        top, left = center_crop_box(H, W, th, tw)
        return crop(img, top, left, th, tw)

    def __repr__(self):
        return f"CenterCrop(size={self.size})"


class RandomCrop:
    """Pad by `padding` (filled with `fill`), then cut a th x tw window at a uniformly random place."""

    def __init__(self, size, padding=0, fill=0.0, pad_if_needed=False, rng=None):
        self.size = positive_pair("RandomCrop", "size", size)
        self.padding, self.fill, self.pad_if_needed, self.rng = padding, fill, pad_if_needed, rng

    def __call__(self, img):
        _check_image("RandomCrop", img)
        if self.padding:
            img = pad(img, self.padding, self.fill)
        th, tw = self.size
        _, H, W = img.shape
        if self.pad_if_needed and (H < th or W < tw):
            img = pad(img, (max(tw - W, 0), max(th - H, 0)), self.fill)
            _, H, W = img.shape
        if th > H or tw > W:
            raise ValueError(f"RandomCrop: crop size {(th, tw)} is larger than the (padded) image "
                             f"{(H, W)}")
        rng = _rng(self.rng)
        top = int(rng.integers(0, H - th + 1))
        left = int(rng.integers(0, W - tw + 1))
        return crop(img, top, left, th, tw)

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror left-right with probability p."""

    def __init__(self, p=0.5, rng=None):
        self.p, self.rng = p, rng

    def __call__(self, img):
        _check_image("RandomHorizontalFlip", img)
        if _rng(self.rng).random() < self.p:
            return img[:, :, ::-1].copy()
        return img

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


class RandomVerticalFlip:
    """Mirror top-bottom with probability p."""

    def __init__(self, p=0.5, rng=None):
        self.p, self.rng = p, rng

    def __call__(self, img):
        _check_image("RandomVerticalFlip", img)
        if _rng(self.rng).random() < self.p:
            return img[:, ::-1, :].copy()
        return img

    def __repr__(self):
        return f"RandomVerticalFlip(p={self.p})"


class Resize:
    """Bilinear resize. `size` a pair (th, tw), or an int: the shorter side becomes `size` and the
    longer keeps the aspect ratio (truncated to an int), as torchvision's Resize."""

    def __init__(self, size):
        if isinstance(size, numbers.Integral):
            if size <= 0:
                raise ValueError(f"Resize: expected a positive size, got {size}")
            self.size = int(size)
        else:
            self.size = positive_pair("Resize", "size", size)

    def __call__(self, img):
        _check_image("Resize", img)
        _, H, W = img.shape
        if isinstance(self.size, int):
            short, long_ = (H, W) if H <= W else (W, H)
            new_short, new_long = self.size, int(self.size * long_ / short)
            target = (new_short, new_long) if H <= W else (new_long, new_short)
        else:
            target = self.size
        if target == (H, W):
            return img
        return resize(img, target)

    def __repr__(self):
        return f"Resize(size={self.size})"


class RandomResizedCrop:
    """A crop of random area (a fraction `scale` of the image) and aspect ratio (`ratio`, drawn
    log-uniformly), resized to `size`: the Inception-style augmentation, torchvision's algorithm
    (10 tries, then a central crop with the ratio clamped)."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), rng=None):
        self.size = positive_pair("RandomResizedCrop", "size", size)
        if scale[0] > scale[1] or ratio[0] > ratio[1] or scale[0] <= 0 or ratio[0] <= 0:
            raise ValueError(f"RandomResizedCrop: expected 0 < scale[0] <= scale[1] and "
                             f"0 < ratio[0] <= ratio[1], got scale={scale}, ratio={ratio}")
        self.scale, self.ratio, self.rng = tuple(scale), tuple(ratio), rng

    def get_params(self, H, W, rng):
        """(top, left, height, width) of the crop."""
        area = H * W
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target_area = area * rng.uniform(self.scale[0], self.scale[1])
            aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= W and 0 < h <= H:
                return int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1)), h, w
        in_ratio = W / H  # fallback: the largest central crop with an allowed aspect ratio
        if in_ratio < self.ratio[0]:
            w, h = W, int(round(W / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            h, w = H, int(round(H * self.ratio[1]))
        else:
            w, h = W, H
        return (H - h) // 2, (W - w) // 2, h, w

    def __call__(self, img):
        _check_image("RandomResizedCrop", img)
        top, left, h, w = self.get_params(img.shape[1], img.shape[2], _rng(self.rng))
        return resize(crop(img, top, left, h, w), self.size)

    def __repr__(self):
        return f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio={self.ratio})"


class RandomRotation:
    """Rotate by an angle drawn uniformly from (-degrees, degrees) (or the pair (min, max)),
    counter-clockwise, bilinear (torchvision defaults to nearest), corners filled with `fill`."""

    def __init__(self, degrees, fill=0.0, rng=None):
        if isinstance(degrees, numbers.Number):
            if degrees < 0:
                raise ValueError(f"RandomRotation: degrees must be non-negative, got {degrees}")
            degrees = (-degrees, degrees)
        self.degrees = (float(degrees[0]), float(degrees[1]))
        self.fill, self.rng = fill, rng

    def __call__(self, img):
        _check_image("RandomRotation", img)
        angle = _rng(self.rng).uniform(self.degrees[0], self.degrees[1])
        return rotate(img, angle, self.fill)

    def __repr__(self):
        return f"RandomRotation(degrees={self.degrees})"


# ImageNet's per-channel RGB mean and standard deviation for pixels in [0, 1]: the Normalize that
# torchvision's ImageNet weights expect (`Normalize(IMAGENET_MEAN, IMAGENET_STD)`).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# ImageNet's RGB eigenvalues and eigenvectors (columns) for pixels in [0, 1], as published with
# fb.resnet.torch and used by most re-implementations of AlexNet's "PCA colour augmentation".
IMAGENET_EIGVAL = np.array([0.2175, 0.0188, 0.0045])
IMAGENET_EIGVEC = np.array([[-0.5675, 0.7192, 0.4009],
                            [-0.5808, -0.0045, -0.8140],
                            [-0.5836, -0.6948, 0.4203]])


class PCALighting:
    """AlexNet's colour augmentation (Krizhevsky et al. 2012, section 4.1): add to every pixel
    `[p1, p2, p3] @ [a1 l1, a2 l2, a3 l3]`, where p_i, l_i are the eigenvectors and eigenvalues
    of the RGB covariance over the training set and a_i ~ N(0, alphastd), drawn once per image."""

    def __init__(self, alphastd=0.1, eigval=IMAGENET_EIGVAL, eigvec=IMAGENET_EIGVEC, rng=None):
        self.alphastd = float(alphastd)
        self.eigval, self.eigvec = np.asarray(eigval, np.float64), np.asarray(eigvec, np.float64)
        k = len(self.eigval)
        if self.eigvec.shape != (k, k):
            raise ValueError(f"PCALighting: expected eigvec of shape ({k}, {k}) for {k} eigenvalues, "
                             f"got {self.eigvec.shape}")
        self.rng = rng

    def __call__(self, img):
        _check_image("PCALighting", img)
        if img.shape[0] != len(self.eigval):
            raise ValueError(f"PCALighting: expected an image with {len(self.eigval)} channels, "
                             f"got {img.shape[0]}")
        if self.alphastd == 0:
            return img
        alpha = _rng(self.rng).normal(0.0, self.alphastd, size=len(self.eigval))
        shift = self.eigvec @ (alpha * self.eigval)  # one offset per channel
        return img + shift.astype(img.dtype).reshape(-1, 1, 1)

    def __repr__(self):
        return f"PCALighting(alphastd={self.alphastd})"
