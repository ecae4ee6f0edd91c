"""read_image: every mode to RGB uint8, EXIF orientation, clear errors for bad files."""

import numpy as np
import pytest
from PIL import Image

from visionkit.data.images import check_image_file, read_image
from visionkit.errors import ImageReadError


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "1", "CMYK", "RGB"])
def test_modes_become_rgb_uint8(tmp_path, mode):
    path = tmp_path / f"img_{mode}.{'jpg' if mode == 'CMYK' else 'png'}"
    Image.new(mode, (5, 4)).save(path)
    image = read_image(path)
    assert image.shape == (4, 5, 3) and image.dtype == np.uint8


def test_grayscale_values_are_replicated(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    image = read_image(tmp_path / "g.png")
    assert (image == gray[..., None]).all()


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    deep = np.array([[0, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "d.png")
    assert read_image(tmp_path / "d.png")[0, :, 0].tolist() == [0, 128, 255]


def test_transparent_pixels_composite_on_white(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)  # fully transparent black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    assert (read_image(tmp_path / "t.png") == 255).all()


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (6, 2), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    img.save(tmp_path / "rot.jpg", exif=exif.tobytes())
    assert read_image(tmp_path / "rot.jpg").shape == (6, 2, 3)


def test_corrupt_and_empty_files_name_the_path(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    for path in (bad, empty):
        with pytest.raises(ImageReadError, match=path.name):
            read_image(path)
        with pytest.raises(ImageReadError, match=path.name):
            check_image_file(path)


def test_truncated_png_fails_on_decode(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(
        tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="cut.png"):
        read_image(tmp_path / "cut.png")
