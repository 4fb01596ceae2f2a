"""Transforms on float32 (C, H, W) arrays: shapes, statistics and exact identities."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
from minicnn.data import transforms as T


def image(rng, c=3, h=12, w=10):
    return rng.random((c, h, w)).astype(np.float32)


# ---- a plain oracle for bilinear sampling: one output pixel at a time -------------------------------

def bilinear_oracle(img, y, x):
    """img sampled at (y, x), clamped to the border, from the four neighbours."""
    C, H, W = img.shape
    y = min(max(y, 0.0), H - 1.0)
    x = min(max(x, 0.0), W - 1.0)
    y0, x0 = int(math.floor(y)), int(math.floor(x))
    y1, x1 = min(y0 + 1, H - 1), min(x0 + 1, W - 1)
    fy, fx = y - y0, x - x0
    return ((1 - fy) * (1 - fx) * img[:, y0, x0] + (1 - fy) * fx * img[:, y0, x1]
            + fy * (1 - fx) * img[:, y1, x0] + fy * fx * img[:, y1, x1])


def resize_oracle(img, th, tw):
    C, H, W = img.shape
    out = np.zeros((C, th, tw))
    for i, j in np.ndindex(th, tw):
        out[:, i, j] = bilinear_oracle(img.astype(np.float64), (i + 0.5) * H / th - 0.5,
                                       (j + 0.5) * W / tw - 0.5)
    return out


@given(h=st.integers(1, 9), w=st.integers(1, 9), th=st.integers(1, 9), tw=st.integers(1, 9),
       c=st.sampled_from([1, 3]))
def test_resize_matches_oracle(h, w, th, tw, c):
    img = np.random.default_rng(h * 100 + w).random((c, h, w)).astype(np.float32)
    out = T.resize(img, (th, tw))
    assert out.shape == (c, th, tw) and out.dtype == np.float32
    np.testing.assert_allclose(out, resize_oracle(img, th, tw), rtol=1e-5, atol=1e-6)


def test_resize_known_values():
    img = np.array([[[0.0, 1.0], [2.0, 3.0]]], dtype=np.float32)
    # upsampling 2x2 -> 4x4 with half-pixel centres: 0, 0.25, 0.75, 1 along a row (PyTorch's values)
    out = T.resize(img, (4, 4))
    np.testing.assert_allclose(out[0, 0], [0.0, 0.25, 0.75, 1.0])
    np.testing.assert_allclose(out[0, :, 0], [0.0, 0.5, 1.5, 2.0])
    np.testing.assert_array_equal(T.resize(img, (2, 2)), img)  # same size: unchanged


def test_resize_constant_is_constant(rng):
    for value in (0.3, 1.0, 0.123456):
        img = np.full((3, 17, 23), value, dtype=np.float32)
        for size in [(5, 7), (40, 9), (17, 23), 11]:
            out = T.Resize(size)(img)
            assert np.all(out == np.float32(value))


def test_resize_int_is_shorter_side():
    img = np.zeros((3, 20, 40), np.float32)
    assert T.Resize(10)(img).shape == (3, 10, 20)
    assert T.Resize(10)(np.zeros((1, 30, 20), np.float32)).shape == (1, 15, 10)
    assert T.Resize(7)(np.zeros((1, 10, 15), np.float32)).shape == (1, 7, 10)  # int(7 * 1.5) = 10
    assert T.Resize((5, 6))(img).shape == (3, 5, 6)
    with pytest.raises(ValueError, match=r"Resize: expected a positive size, got 0"):
        T.Resize(0)


def test_flip_twice_is_identity(rng):
    img = image(rng)
    flip = T.RandomHorizontalFlip(p=1.0)
    once = flip(img)
    np.testing.assert_array_equal(once, img[:, :, ::-1])
    np.testing.assert_array_equal(flip(once), img)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=0.0)(img), img)
    vflip = T.RandomVerticalFlip(p=1.0)
    np.testing.assert_array_equal(vflip(vflip(img)), img)
    np.testing.assert_array_equal(vflip(img), img[:, ::-1])


def test_flip_probability():
    img = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    flip = T.RandomHorizontalFlip(p=0.3, rng=np.random.default_rng(0))
    flipped = sum(int(flip(img)[0, 0, 0] == 2.0) for _ in range(4000))
    assert abs(flipped / 4000 - 0.3) < 0.03


def test_normalize_gives_zero_mean_unit_std(rng):
    img = (rng.random((3, 16, 16)) * [[[2.0]], [[5.0]], [[0.5]]] + [[[1.0]], [[-3.0]], [[7.0]]])
    img = img.astype(np.float32)
    mean, std = img.mean(axis=(1, 2)), img.std(axis=(1, 2))
    out = T.Normalize(mean, std)(img)
    assert out.dtype == np.float32 and out.shape == img.shape
    np.testing.assert_allclose(out.mean(axis=(1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(1, 2)), 1.0, atol=1e-5)
    np.testing.assert_allclose(T.Normalize(0.5, 0.25)(img), (img - 0.5) / 0.25, rtol=1e-6)
    with pytest.raises(ValueError, match=r"Normalize: image has 3 channels, got 2 means"):
        T.Normalize((0.1, 0.2), (1.0, 1.0))(img)
    with pytest.raises(ValueError, match=r"Normalize: std must be non-zero"):
        T.Normalize(0.0, 0.0)


def test_center_crop_picks_the_centre():
    img = np.arange(2 * 7 * 8, dtype=np.float32).reshape(2, 7, 8)
    out = T.CenterCrop(3)(img)
    np.testing.assert_array_equal(out, img[:, 2:5, 2:5])  # top = round(2.0), left = round(2.5) = 2
    np.testing.assert_array_equal(T.CenterCrop((5, 4))(img), img[:, 1:6, 2:6])
    odd = np.zeros((1, 9, 9), np.float32)
    odd[0, 4, 4] = 1.0
    assert T.CenterCrop(1)(odd)[0, 0, 0] == 1.0 and T.CenterCrop(5)(odd)[0, 2, 2] == 1.0
    big = T.CenterCrop(10)(img)  # larger than the image: zero padding around it
    assert big.shape == (2, 10, 10)
    np.testing.assert_array_equal(big[:, 1:8, 1:9], img)
    assert big.sum() == img.sum()


def test_random_crop_keeps_shape_and_content(rng):
    img = image(rng, 3, 8, 8)
    crop = T.RandomCrop(8, padding=2, rng=np.random.default_rng(0))
    padded = np.pad(img, ((0, 0), (2, 2), (2, 2)))
    offsets = set()
    for _ in range(200):
        out = crop(img)
        assert out.shape == img.shape and out.dtype == np.float32
        # the output is some 8x8 window of the padded image
        hits = [(i, j) for i in range(5) for j in range(5)
                if np.array_equal(out, padded[:, i:i + 8, j:j + 8])]
        assert hits
        offsets.update(hits)
    assert len(offsets) == 25  # every position is reachable
    assert T.RandomCrop((4, 6))(img).shape == (3, 4, 6)
    with pytest.raises(ValueError, match=r"RandomCrop: crop size \(10, 10\) is larger than the \(padded\) image \(8, 8\)"):
        T.RandomCrop(10)(img)
    assert T.RandomCrop(10, pad_if_needed=True)(img).shape == (3, 10, 10)


def test_rotation_by_zero_is_identity(rng):
    img = image(rng, 3, 9, 12)
    np.testing.assert_array_equal(T.rotate(img, 0.0), img)
    np.testing.assert_array_equal(T.RandomRotation(0)(img), img)
    np.testing.assert_array_equal(T.RandomRotation((0, 0))(img), img)


def test_rotation_by_right_angles(rng):
    img = image(rng, 2, 7, 7)
    # counter-clockwise as torchvision: np.rot90 turns the first axis towards the second
    np.testing.assert_allclose(T.rotate(img, 90.0), np.rot90(img, 1, axes=(1, 2)), atol=1e-5)
    np.testing.assert_allclose(T.rotate(img, 180.0), img[:, ::-1, ::-1], atol=1e-5)
    np.testing.assert_allclose(T.rotate(img, -90.0), np.rot90(img, -1, axes=(1, 2)), atol=1e-5)
    np.testing.assert_allclose(T.rotate(T.rotate(img, 30.0), -30.0)[:, 3, 3], img[:, 3, 3], atol=1e-5)


def test_rotation_fills_corners():
    img = np.ones((1, 21, 21), np.float32)
    out = T.rotate(img, 45.0, fill=0.0)
    assert out[0, 0, 0] == 0.0 and out[0, 10, 10] == 1.0
    assert T.rotate(img, 45.0, fill=0.5)[0, 0, 0] == 0.5
    angles = T.RandomRotation(10, rng=np.random.default_rng(1))
    assert angles.degrees == (-10.0, 10.0) and angles(img).shape == img.shape


def test_random_resized_crop(rng):
    img = image(rng, 3, 32, 24)
    t = T.RandomResizedCrop(16, rng=np.random.default_rng(0))
    for _ in range(50):
        out = t(img)
        assert out.shape == (3, 16, 16) and out.dtype == np.float32
    boxes = [t.get_params(32, 24, np.random.default_rng(s)) for s in range(200)]
    for top, left, h, w in boxes:
        assert 0 <= top and top + h <= 32 and 0 <= left and left + w <= 24
        assert 0.08 * 32 * 24 * 0.8 <= h * w <= 32 * 24
    # scale (1, 1) and ratio (1, 1) on a square image: the whole image, resized
    whole = T.RandomResizedCrop((8, 8), scale=(1.0, 1.0), ratio=(1.0, 1.0))
    sq = image(rng, 1, 8, 8)
    np.testing.assert_array_equal(whole(sq), sq)
    with pytest.raises(ValueError, match="RandomResizedCrop: expected 0 < scale"):
        T.RandomResizedCrop(8, scale=(0.9, 0.1))


def test_pca_lighting(rng):
    img = image(rng, 3, 5, 5)
    t = T.PCALighting(0.1, rng=np.random.default_rng(0))
    shifts = np.array([(t(img) - img)[:, 0, 0] for _ in range(3000)])
    # each image gets one constant RGB offset, eigvec @ (alpha * eigval) with alpha ~ N(0, 0.1)
    out = t(img)
    diff = out - img
    np.testing.assert_allclose(diff, np.broadcast_to(diff[:, :1, :1], diff.shape), atol=1e-6)
    cov = np.cov(shifts.T)
    V, L = T.IMAGENET_EIGVEC, T.IMAGENET_EIGVAL
    expected = V @ np.diag((0.1 * L) ** 2) @ V.T
    np.testing.assert_allclose(cov, expected, atol=0.1 * expected.max())
    np.testing.assert_array_equal(T.PCALighting(0.0)(img), img)
    with pytest.raises(ValueError, match=r"PCALighting: expected an image with 3 channels, got 1"):
        t(image(rng, 1, 4, 4))


def test_compose_and_global_rng(rng):
    img = image(rng, 1, 28, 28)
    tf = T.Compose([T.RandomCrop(28, padding=4), T.RandomRotation(15), T.Normalize((0.5,), (0.5,))])
    mc.manual_seed(3)
    a = tf(img)
    mc.manual_seed(3)
    b = tf(img)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, tf(img))
    with T.rng_scope(np.random.default_rng(5)):
        c = tf(img)
    with T.rng_scope(np.random.default_rng(5)):
        d = tf(img)
    np.testing.assert_array_equal(c, d)
    assert "RandomCrop" in repr(tf)


def test_to_float():
    hwc = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    out = T.ToFloat()(hwc)
    assert out.shape == (3, 2, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, hwc.transpose(2, 0, 1) / 255.0, rtol=1e-6)
    assert T.ToFloat()(np.zeros((5, 6), np.uint8)).shape == (1, 5, 6)


def test_bad_input_messages():
    with pytest.raises(ValueError, match=r"CenterCrop: expected an image array of shape \(C, H, W\), got \(28, 28\)"):
        T.CenterCrop(3)(np.zeros((28, 28), np.float32))
    with pytest.raises(ValueError, match=r"RandomCrop: size must be >= 1, got 0"):
        T.RandomCrop(0)
