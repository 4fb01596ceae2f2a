"""ImageFolder on a tiny folder of PNG files written by the test."""
import re

import numpy as np
import pytest

from minicnn.data import DataLoader, ImageFolder
from minicnn.data import transforms as T

PIL = pytest.importorskip("PIL", reason="Pillow is needed to write the test images")
from PIL import Image  # noqa: E402


def write_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def folder(tmp_path):
    """root/{dog, cat, bird}/*.png with known pixels; returns root and {relative path: array}."""
    rng = np.random.default_rng(0)
    arrays = {}
    for cls, count in [("dog", 2), ("cat", 3), ("bird", 1)]:
        for k in range(count):
            arr = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
            write_png(tmp_path / cls / f"img{k}.png", arr)
            arrays[f"{cls}/img{k}.png"] = arr
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    return tmp_path, arrays


def test_classes_samples_and_pixels(folder):
    root, arrays = folder
    ds = ImageFolder(root)
    assert ds.classes == ["bird", "cat", "dog"]
    assert ds.class_to_idx == {"bird": 0, "cat": 1, "dog": 2}
    assert len(ds) == 6
    assert [t for _, t in ds.samples] == [0, 1, 1, 1, 2, 2] == ds.targets
    for i, (path, target) in enumerate(ds.samples):
        x, y = ds[i]
        rel = "/".join(path.replace("\\", "/").split("/")[-2:])
        assert x.shape == (3, 5, 7) and x.dtype == np.float32 and y == target
        np.testing.assert_allclose(x, arrays[rel].transpose(2, 0, 1) / 255.0, rtol=1e-6)


def test_grey_mode_transform_and_loader(folder):
    root, arrays = folder
    ds = ImageFolder(root, mode="L", transform=T.Resize((4, 4)))
    x, y = ds[0]
    assert x.shape == (1, 4, 4) and x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    batches = list(DataLoader(ds, batch_size=4, shuffle=True, seed=0, num_workers=2))
    assert [b[0].shape for b in batches] == [(4, 1, 4, 4), (2, 1, 4, 4)]
    assert sorted(np.concatenate([b[1].data for b in batches]).tolist()) == [0, 1, 1, 1, 2, 2]


def test_lazy_loading(folder, monkeypatch):
    root, _ = folder
    from minicnn.data import folder as folder_mod
    calls = []
    real = folder_mod.load_image
    monkeypatch.setattr(folder_mod, "load_image", lambda p, m: calls.append(p) or real(p, m))
    ds = ImageFolder(root)
    assert calls == []  # nothing read when the dataset is built
    ds[4]
    assert calls == [ds.samples[4][0]]


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"ImageFolder: root folder .*missing does not exist"):
        ImageFolder(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match=r"ImageFolder: found no class folders in .*root/<class>/<image>"):
        ImageFolder(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "readme.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"ImageFolder: found no image files"):
        ImageFolder(tmp_path)


def test_ragged_images_need_a_resize(folder):
    root, _ = folder
    write_png(root / "bird" / "big.png", np.zeros((9, 9, 3), np.uint8))
    with pytest.raises(ValueError, match=r"same shape.*add a Resize/CenterCrop transform"):
        list(DataLoader(ImageFolder(root), batch_size=8))
    ok = list(DataLoader(ImageFolder(root, transform=T.CenterCrop(5)), batch_size=8))
    assert ok[0][0].shape == (7, 3, 5, 5)


# ---- a file that cannot be decoded: ImageFileError naming it ------------------------------------
from minicnn.data.folder import ImageFileError  # noqa: E402


def _bad_images(root):
    """Replace two of the folder's images: one cut in half, one a text file named .png."""
    png = root / "cat" / "img0.png"
    png.write_bytes(png.read_bytes()[: len(png.read_bytes()) // 2])
    (root / "dog" / "img1.png").write_text("I am not a picture\n")
    return str(png), str(root / "dog" / "img1.png")


def test_truncated_and_non_images_name_the_file(folder):
    root, _ = folder
    truncated, text = _bad_images(root)
    ds = ImageFolder(root)
    paths = [p for p, _ in ds.samples]
    for bad in (truncated, text):
        with pytest.raises(ImageFileError, match=re.escape(f"cannot read the image {bad}")) as info:
            ds[paths.index(bad)]
        assert isinstance(info.value, OSError)          # as Pillow's own errors
        assert isinstance(info.value.__cause__, Exception)   # Pillow's reason is kept


def test_a_bad_image_in_a_loader_thread_names_the_file(folder):
    root, _ = folder
    bad = _bad_images(root)
    with pytest.raises(ImageFileError, match="cannot read the image") as info:
        list(DataLoader(ImageFolder(root, transform=T.Resize((4, 4))), batch_size=2, num_workers=2))
    assert any(path in str(info.value) for path in bad)


def test_an_unknown_mode_is_not_blamed_on_the_file(folder):
    root, _ = folder
    with pytest.raises(ValueError, match="unknown mode 'XYZ'"):
        ImageFolder(root, mode="XYZ")[0]
