"""Detections drawn on images: the caption stays whole inside the image, at any box position."""

import cv2
import numpy as np

from visionkit.evaluation.drawing import class_colour, draw_detections


def test_caption_of_a_box_at_the_right_edge_is_shifted_in_not_cut():
    image = np.zeros((60, 100, 3), np.uint8)
    text = "triangle 0.93"
    (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
    drawn = draw_detections(image, np.array([[90.0, 30, 99, 50]]), [2], [0.93], ["triangle"])
    label_rows = np.flatnonzero((drawn == class_colour(2)).all(2).any(1))
    fill = (drawn[label_rows.min()] == class_colour(2)).all(1)  # the caption's top row
    assert fill[100 - tw - 4:].all()  # the whole caption background fits before the right edge


def test_image_grid_fits_each_image_into_its_cell_and_captions_it():
    from visionkit.evaluation.drawing import image_grid

    wide = np.full((50, 100, 3), 255, np.uint8)
    tall = np.zeros((80, 40, 3), np.uint8)
    grid = image_grid([wide, tall, wide], ["first", "", "third"], cell=64)
    assert grid.shape == (128, 128, 3)  # 3 images: 2 columns, 2 rows
    assert (grid[20:32, 0:64] == 255).all()  # the wide image scaled to 64 x 32, at the top left
    assert (grid[33:64, 0:64] == 114).all()  # grey below it
    assert (grid[0:64, 64:96] == 0).all() and (grid[0:64, 96:128] == 114).all()  # tall: 32 x 64
    assert (grid[0:5, 0:20] == 30).any()  # the caption's dark strip
    assert (grid[64:128, 64:128] == 114).all()  # the empty fourth cell
