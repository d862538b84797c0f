"""Interchange formats: a folder of images, with COCO annotations, as frames.

    from framevault.sdk.formats import read_image_folder

    folder = read_image_folder("images", coco_file="annotations/instances.json")
    totals = draft.add_frames_with_totals(folder.frames())
    for error in folder.errors:   # COCO records that could not be imported
        print(error)
"""

from framevault.sdk.formats.coco import CocoError, CocoImage, CocoIndex, CocoRecordError, load_coco
from framevault.sdk.formats.image_folder import IMAGE_SUFFIXES, ImageFolder, image_files, image_size, read_image_folder

__all__ = [
    "IMAGE_SUFFIXES",
    "CocoError",
    "CocoImage",
    "CocoIndex",
    "CocoRecordError",
    "ImageFolder",
    "image_files",
    "image_size",
    "load_coco",
    "read_image_folder",
]
