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
