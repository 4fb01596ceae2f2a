"""`minicnn train --weights FILE --freeze PREFIX` fine-tunes on an image folder from the command
line: the practice's workflow on a tiny folder data set and a small ResNet-34 made here."""
import pickle

import numpy as np
import pytest

import minicnn as mc
from minicnn import cli, models, train

pytest.importorskip("safetensors", reason="safetensors is not installed (pip install -e '.[weights]')")
pytest.importorskip("PIL", reason="Pillow is not installed")

SMALL_RESNET = ["--model", "resnet34", "--model-kw", "width_mult=0.25"]


def make_folder(root, per_class=(6, 3), size=64, seed=0):
    """root/{train,test}/{cats,dogs}/*.png: cats have horizontal stripes, dogs vertical ones."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    for split, n in zip(("train", "test"), per_class):
        for label, name in enumerate(("cats", "dogs")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                stripes = (np.arange(size) // 4 % 2).astype(np.float32)
                plane = stripes[:, None] if label == 0 else stripes[None, :]
                img = np.broadcast_to(plane, (size, size))[..., None] * rng.uniform(0.3, 1.0, 3)
                img = img + 0.1 * rng.random((size, size, 3))
                Image.fromarray((255 * np.clip(img, 0, 1)).astype(np.uint8)).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A folder data set and 'pretrained' ResNet-34 weights with a 10-class head."""
    root = tmp_path_factory.mktemp("finetune")
    data_dir = make_folder(root / "pets")
    mc.manual_seed(5)
    pretrained = models.resnet34(num_classes=10, width_mult=0.25)
    weights = root / "resnet34.safetensors"
    mc.save_safetensors(pretrained.state_dict(), weights)
    return root, data_dir, weights, pretrained.state_dict()


def finetune_args(setup, out, *extra):
    root, data_dir, weights, _ = setup
    return ["train", "--dataset", "folder", "--data-dir", str(data_dir), *SMALL_RESNET,
            "--weights", str(weights), "--freeze", "features", "--image-size", "64",
            "--batch-size", "4", "--val-fraction", "0", "--out", str(out), *extra]


def test_train_with_weights_and_freeze_features_fine_tunes_only_the_head(setup, capsys):
    root, _, weights, original = setup
    out = root / "run"
    assert cli.main(finetune_args(setup, out, "--epochs", "2")) == 0
    captured = capsys.readouterr()
    assert "note: ResNet: the head of" in captured.err and "fc.weight (10, 128) -> (2, 128)" in captured.err
    assert "froze 108 parameter tensors under features; 258 of" in captured.err
    assert "resnet34 on folder (12 train, 0 validation, 6 test images)" in captured.out
    ckpt = train.load_checkpoint(out / "checkpoint.npz")
    tuned = ckpt["model"]
    assert tuned["fc.weight"].shape == (2, 128)
    names = [n for n, _ in models.resnet34(width_mult=0.25).named_parameters()]
    for name in names:
        if not name.startswith("fc."):
            np.testing.assert_array_equal(tuned[name], original[name], err_msg=name)
    assert ckpt["meta"]["args"]["freeze"] == ["features"]
    assert ckpt["meta"]["args"]["transforms"] == "auto"
    assert "weights" not in ckpt["meta"]["model_kwargs"]   # evaluate rebuilds without the file
    # resuming keeps the freeze (it is not in the checkpoint's weights) and needs no weight file
    assert cli.main(["train", "--resume", str(out / "checkpoint.npz"), "--epochs", "3", "--quiet"]) == 0
    resumed = train.load_checkpoint(out / "checkpoint.npz")["model"]
    assert train.load_checkpoint(out / "checkpoint.npz")["epoch"] == 3
    np.testing.assert_array_equal(resumed["layer2.0.conv1.weight"], original["layer2.0.conv1.weight"])
    assert not np.array_equal(resumed["fc.weight"], tuned["fc.weight"])


def test_the_finetune_preset_is_chosen_with_weights():
    args = {**cli.TRAIN_DEFAULTS, "weights": "w.safetensors", "model": "resnet34"}
    train_tf, test_tf = cli._folder_transforms(args, 64, 3)
    assert "RandomResizedCrop" in repr(train_tf) and "RandomRotation" in repr(train_tf)
    assert "Normalize(mean=[0.485, 0.456, 0.406]" in repr(test_tf)
    plain, same = cli._folder_transforms({**args, "weights": None}, 64, 3)
    assert plain is same and "Normalize" not in repr(plain)
    assert cli._image_size(args) == 224 and cli._image_size({**args, "weights": None}) == 32


def user_error(argv, capsys, *says):
    assert cli.main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("minicnn train: error: ") and err.count("\n") == 1, err
    for text in says:
        assert text in err, err


def test_freeze_of_a_name_the_model_lacks_lists_the_names(setup, capsys, tmp_path):
    argv = finetune_args(setup, tmp_path / "o", "--epochs", "1", "--freeze", "layer9")
    user_error(argv, capsys, "--freeze:", "no parameter named 'layer9'", "conv1, fc, layer1")


def test_weight_file_errors_name_the_file(setup, capsys, tmp_path):
    root, _, _, _ = setup
    fake = tmp_path / "model.safetensors"
    fake.write_bytes(pickle.dumps({"fc.weight": [0.0]}, protocol=4))
    argv = finetune_args(setup, tmp_path / "o", "--epochs", "1")
    at = argv.index("--weights") + 1
    argv[at] = str(fake)
    user_error(argv, capsys, f"--weights: load_safetensors: {fake} is not a safetensors file but a Python pickle")
    argv[at] = str(tmp_path / "missing.safetensors")
    user_error(argv, capsys, f"--weights: no such file: {tmp_path / 'missing.safetensors'}")
    lenet = tmp_path / "lenet.safetensors"
    mc.save_safetensors(models.lenet5(), lenet)
    argv[at] = str(lenet)
    user_error(argv, capsys, f"{lenet}: these weights do not fit ResNet", "Missing key(s)")


def test_finetune_preset_needs_rgb(setup, capsys, tmp_path):
    argv = finetune_args(setup, tmp_path / "o", "--epochs", "1", "--transforms", "finetune",
                         "--channels", "1")
    user_error(argv, capsys, "--transforms finetune normalises RGB images")
