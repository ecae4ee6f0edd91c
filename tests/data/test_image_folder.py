"""Image folders: class discovery, validation (error or skip + report), splits, collation."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visionkit.data import image_folder
from visionkit.data.image_folder import (
    ImageFolderDataset,
    collate_classification,
    scan_image_folder,
    stratified_split,
)
from visionkit.data.transforms import classification_eval_transform
from visionkit.errors import DatasetError, ImageReadError


def make_folder(root, counts, size=(12, 10)):
    for name, n in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.new("RGB", size, (i * 20, 50, 90)).save(root / name / f"{i}.jpg")
    return root


def test_classes_sorted_and_samples_labelled(tmp_path):
    make_folder(tmp_path, {"zebra": 2, "ant": 3})
    (tmp_path / "ant" / "notes.txt").write_text("not an image")
    index = scan_image_folder(tmp_path)
    assert index.classes == ["ant", "zebra"]
    assert [lab for _, lab in index.samples] == [0, 0, 0, 1, 1]
    assert index.ignored == [str(tmp_path / "ant" / "notes.txt")]


def test_empty_class_folder_is_an_error_naming_it(tmp_path):
    make_folder(tmp_path, {"ant": 2})
    (tmp_path / "bee").mkdir()
    with pytest.raises(DatasetError, match=r"bee: class folder has no image files"):
        scan_image_folder(tmp_path)


def noise_image_bytes(fmt):
    """Encoded bytes of a 64x64 noise image (noise keeps the file long enough to cut)."""
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(buffer, fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("name, content, reason", [
    ("broken.jpg", b"\xff\xd8\xff\xe0 not a jpeg", "not a readable image"),
    ("zero.png", b"", "empty file (0 bytes)"),
    ("notes.png", b"a text file with an image extension", "not a readable image"),
    ("cut.png", noise_image_bytes("PNG")[:3000], "image file is truncated"),
])
def test_corrupt_file_is_an_error_naming_it(tmp_path, name, content, reason):
    make_folder(tmp_path, {"ant": 2, "bee": 2})
    (tmp_path / "bee" / name).write_bytes(content)
    with pytest.raises(ImageReadError) as err:
        scan_image_folder(tmp_path)
    assert str(err.value).startswith(f"{tmp_path}: 1 unreadable image files: {tmp_path / 'bee' / name}: ")
    assert reason in str(err.value)


def test_every_unreadable_file_is_counted_in_one_error(tmp_path):
    make_folder(tmp_path, {"ant": 2, "bee": 2})
    for i in range(7):
        (tmp_path / ("ant" if i % 2 else "bee") / f"broken{i}.jpg").write_bytes(b"garbage")
    with pytest.raises(ImageReadError) as err:
        scan_image_folder(tmp_path)
    message = str(err.value)
    assert message.startswith(f"{tmp_path}: 7 unreadable image files: ") and "\n" not in message
    assert message.count(".jpg: ") == 5 and "; ... and 2 more (fix or remove them" in message


def test_skip_invalid_leaves_out_and_reports(tmp_path):
    make_folder(tmp_path, {"ant": 2, "bee": 2})
    (tmp_path / "cat").mkdir()
    (tmp_path / "bee" / "broken.jpg").write_bytes(b"garbage")
    (tmp_path / "bee" / "zero.png").write_bytes(b"")
    Image.fromarray(np.full((8, 8), 77, np.uint8), "L").save(tmp_path / "ant" / "gray.png")
    index = scan_image_folder(tmp_path, skip_invalid=True)
    assert index.classes == ["ant", "bee"]
    skipped = dict(index.skipped)
    assert set(skipped) == {str(tmp_path / "cat"), str(tmp_path / "bee" / "broken.jpg"),
                            str(tmp_path / "bee" / "zero.png")}
    assert len(index.samples) == 5  # the grayscale PNG is kept
    gray = next(p for p, _ in index.samples if p.endswith("gray.png"))
    ds = ImageFolderDataset([(gray, 0)], index.classes,
                            classification_eval_transform(8, (0.5,) * 3, (0.5,) * 3))
    assert tuple(ds[0]["image"].shape) == (3, 8, 8)


def test_truncated_jpeg_is_found_while_indexing_a_small_folder(tmp_path):
    make_folder(tmp_path, {"ant": 1, "bee": 1})
    data = noise_image_bytes("JPEG")
    (tmp_path / "ant" / "cut.jpg").write_bytes(data[: len(data) // 2])  # its header is intact
    with pytest.raises(ImageReadError, match=r"1 unreadable image files: .*cut.jpg: .*truncated"):
        scan_image_folder(tmp_path)
    index = scan_image_folder(tmp_path, skip_invalid=True)
    assert index.decoded and [p for p, _ in index.skipped] == [str(tmp_path / "ant" / "cut.jpg")]
    assert len(index.samples) == 2


def test_decode_failure_at_read_time_error_or_skip(tmp_path, monkeypatch):
    monkeypatch.setattr(image_folder, "DECODE_CHECK_MAX", 2)  # a large folder: headers only
    make_folder(tmp_path, {"ant": 1, "bee": 1})
    data = noise_image_bytes("JPEG")
    (tmp_path / "ant" / "cut.jpg").write_bytes(data[: len(data) // 2])
    index = scan_image_folder(tmp_path)  # a truncated JPEG has a valid header: found on decoding
    assert not index.decoded and str(tmp_path / "ant" / "cut.jpg") in dict(index.samples)
    samples = [(str(tmp_path / "ant" / "cut.jpg"), 0), (str(tmp_path / "ant" / "0.jpg"), 0)]
    tf = classification_eval_transform(8, (0.5,) * 3, (0.5,) * 3)
    with pytest.raises(ImageReadError, match=r"cut.jpg: cannot decode image .*truncated"):
        ImageFolderDataset(samples, ["ant"], tf)[0]
    ds = ImageFolderDataset(samples, ["ant"], tf, skip_invalid=True)
    batch = collate_classification([ds[0], ds[1]])
    assert batch["image"].shape == (1, 3, 8, 8)
    assert batch["skipped"][0][0].endswith("cut.jpg")


def test_nested_folders_belong_to_their_top_class_folder(tmp_path):
    make_folder(tmp_path, {"ant": 1, "bee": 1, "bee/2019/june": 2, "bee/.thumbnails": 1})
    index = scan_image_folder(tmp_path)
    assert index.classes == ["ant", "bee"]
    bees = [Path(p).relative_to(tmp_path).as_posix() for p, label in index.samples if label == 1]
    assert bees == ["bee/0.jpg", "bee/2019/june/0.jpg", "bee/2019/june/1.jpg"]


def test_symlinked_folders_are_followed_once_and_loops_end(tmp_path):
    root = make_folder(tmp_path / "data", {"ant": 1, "bee": 1})
    make_folder(tmp_path / "elsewhere", {"more ants": 2})
    (root / "ant" / "linked").symlink_to(tmp_path / "elsewhere" / "more ants")
    (root / "ant" / "linked again").symlink_to(tmp_path / "elsewhere" / "more ants")
    (root / "ant" / "loop").symlink_to(root / "ant")
    (root / "bee" / "up").symlink_to(root)
    (root / "bee" / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    index = scan_image_folder(root, skip_invalid=True)
    assert [label for _, label in index.samples] == [0, 0, 0, 1]
    assert sorted(Path(p).relative_to(root).as_posix() for p, _ in index.samples) == [
        "ant/0.jpg", "ant/linked/0.jpg", "ant/linked/1.jpg", "bee/0.jpg"]
    assert [Path(p).name for p, _ in index.skipped] == ["dangling.jpg"]


def test_unicode_and_spaces_in_paths_just_work(tmp_path):
    root = make_folder(tmp_path / "mes données été", {"chat noir": 1, "犬 dog": 2})
    index = scan_image_folder(root)
    assert index.classes == ["chat noir", "犬 dog"] and len(index.samples) == 3
    ds = ImageFolderDataset(index.samples, index.classes,
                            classification_eval_transform(8, (0.5,) * 3, (0.5,) * 3))
    assert ds[2]["path"].endswith("犬 dog/1.jpg") and tuple(ds[2]["image"].shape) == (3, 8, 8)


def test_val_root_must_use_training_classes(tmp_path):
    make_folder(tmp_path / "train", {"ant": 1, "bee": 1})
    make_folder(tmp_path / "val", {"ant": 1, "wasp": 1})
    with pytest.raises(DatasetError, match="wasp"):
        scan_image_folder(tmp_path / "val", ["ant", "bee"])


def test_stratified_split_is_seeded_and_stratified():
    samples = [(f"a{i}", 0) for i in range(10)] + [(f"b{i}", 1) for i in range(30)]
    train, val = stratified_split(samples, 0.2, seed=3)
    assert stratified_split(samples, 0.2, seed=3) == (train, val)
    assert stratified_split(samples, 0.2, seed=4) != (train, val)
    assert sum(lab == 0 for _, lab in val) == 2 and sum(lab == 1 for _, lab in val) == 6
    assert not {p for p, _ in train} & {p for p, _ in val}
