"""Images: NumPy arrays of pixels (kept in their own dtype; rescaling happens inside the model so
predict takes raw pixels), and image files named in a column (decoded and resized as batches stream).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from dlcli.io.images import loader, paths
from dlcli.preprocessing.base import Preprocessor
from dlcli.utils.arrays import check_pixels


class ImagePreprocessor(Preprocessor):
    """Image arrays: their shape and dtype, as the model takes them."""

    KIND: ClassVar[str] = "image"
    arrays: ClassVar[bool] = True
    images: ClassVar[bool] = True

    @property
    def input_shape(self) -> list[int]:
        return self.image["shape"]

    @property
    def input_dtype(self) -> str:
        return self.image["dtype"]

    def features(self, part: Any, source: str = "") -> np.ndarray:
        x = part[0] if isinstance(part, tuple) else part
        return check_pixels(x, self.image["shape"], self.image["dtype"], source)


class ImageFilesPreprocessor(ImagePreprocessor):
    """Image files, their paths in a column: decoded and resized (Keras' Resizing) as batches stream."""

    KIND: ClassVar[str] = "image_files"
    arrays: ClassVar[bool] = False
    reads_files: ClassVar[bool] = True

    @property
    def input_columns(self) -> list[str]:
        return [self.image["column"]]

    def loader(self):
        return loader(self.image)

    def features(self, part: Any, source: str = "") -> np.ndarray:
        """The paths; the images are read as batches stream (datasets/pipeline.py)."""
        self.check_columns(part, source)
        return paths(part, self.image["column"])
