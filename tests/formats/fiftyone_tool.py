"""Runs inside the FiftyOne environment (fiftyone_env.py): FiftyOne as the third party.

    fiftyone_tool.py make OUT NAME   builds the FiftyOne dataset NAME from images it draws (boxes, a
                                     crowd box with a mask, polygons, keypoints, a classification) and
                                     writes it with FiftyOne's own exporters: OUT/coco_boxes,
                                     OUT/coco_polygons, OUT/coco_keypoints, OUT/yolo, OUT/voc
    fiftyone_tool.py load FORMAT DIR LAYOUT
                                     loads DIR with FiftyOne's importer; LAYOUT "ours" (framevault's
                                     export) or "fiftyone" (what FiftyOne's exporter wrote)
    fiftyone_tool.py dump NAME       an existing FiftyOne dataset
    fiftyone_tool.py delete NAME...  deletes datasets

Each prints, on its last line, the labels in pixels by image file name:
``{name: {"size": [w, h], "boxes": [[label, x, y, w, h]], "polygons": [[label, [[x, y, ...]]]],
"keypoints": [[label, [[x, y] | null]]], "classifications": [label]}}``.
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any

import fiftyone as fo
from PIL import Image

SIZES = [(64, 48), (50, 40), (32, 32)]


def build(out: str, name: str) -> fo.Dataset:
    images = os.path.join(out, "source_images")
    os.makedirs(images, exist_ok=True)
    if fo.dataset_exists(name):
        fo.delete_dataset(name)
    dataset = fo.Dataset(name)
    dataset.persistent = True
    for index, (width, height) in enumerate(SIZES):
        path = os.path.join(images, f"image{index}.jpg")
        Image.new("RGB", (width, height), (40 * index, 90, 200)).save(path)
        boxes = [fo.Detection(label="cat", bounding_box=[0.125, 0.25, 0.5, 0.25], confidence=0.75),
                 fo.Detection(label="dog" if index % 2 else "cat", bounding_box=[0.5, 0.5, 0.25, 0.375])]
        if index == 0:
            import numpy as np

            mask = np.zeros((12, 16), dtype=bool)
            mask[2:9, 3:12] = True
            boxes.append(fo.Detection(label="crowd", bounding_box=[0.25, 0.5, 0.25, 0.25], mask=mask, iscrowd=1))
        sample = fo.Sample(
            filepath=path,
            detections=fo.Detections(detections=boxes),
            polylines=fo.Polylines(polylines=[fo.Polyline(
                label="road", points=[[(0.1, 0.1), (0.9, 0.1), (0.5, 0.8)]], closed=True, filled=True)]),
            keypoints=fo.Keypoints(keypoints=[fo.Keypoint(
                label="person", points=[(0.25, 0.25), (0.5, 0.75), (float("nan"), float("nan"))])]),
            weather=fo.Classification(label="sunny" if index % 2 else "rainy"),
        )
        dataset.add_sample(sample)
    dataset.compute_metadata()
    return dataset


def export(dataset: fo.Dataset, out: str) -> None:
    boxes_only = dataset.filter_labels("detections", fo.ViewField("label") != "crowd", only_matches=False)
    dataset.export(os.path.join(out, "coco_boxes"), dataset_type=fo.types.COCODetectionDataset,
                   label_field="detections")
    dataset.export(os.path.join(out, "coco_polygons"), dataset_type=fo.types.COCODetectionDataset,
                   label_field="polylines")
    dataset.export(os.path.join(out, "coco_keypoints"), dataset_type=fo.types.COCODetectionDataset,
                   label_field="keypoints")
    boxes_only.export(os.path.join(out, "yolo"), dataset_type=fo.types.YOLOv5Dataset, label_field="detections",
                      split="train")
    boxes_only.export(os.path.join(out, "voc"), dataset_type=fo.types.VOCDetectionDataset,
                      label_field="detections")


# Where each format keeps images and labels: framevault's export layout, and FiftyOne's own.
LAYOUTS = {
    "ours": {"coco": ("images", "annotations.json"), "yolo": ("data.yaml",), "voc": ("JPEGImages", "Annotations")},
    "fiftyone": {"coco": ("data", "labels.json"), "yolo": ("dataset.yaml",), "voc": ("data", "labels")},
}


def load(format_name: str, directory: str, layout: str) -> fo.Dataset:
    name = f"load-{format_name}-{os.getpid()}"
    paths = [os.path.join(directory, part) for part in LAYOUTS[layout][format_name]]
    if format_name == "coco":
        return fo.Dataset.from_dir(dataset_type=fo.types.COCODetectionDataset, name=name,
                                   data_path=paths[0], labels_path=paths[1],
                                   label_types=["detections", "segmentations", "keypoints"], use_polylines=True,
                                   label_field="coco")
    if format_name == "yolo":
        return fo.Dataset.from_dir(dataset_dir=directory, dataset_type=fo.types.YOLOv5Dataset, name=name,
                                   split="train", yaml_path=paths[0])
    if format_name == "voc":
        return fo.Dataset.from_dir(dataset_type=fo.types.VOCDetectionDataset, name=name,
                                   data_path=paths[0], labels_path=paths[1])
    raise SystemExit(f"unknown format {format_name}")


def pixels(dataset: Any) -> dict[str, Any]:
    dataset.compute_metadata()
    out: dict[str, Any] = {}
    for sample in dataset.iter_samples():
        width, height = sample.metadata.width, sample.metadata.height
        entry: dict[str, Any] = {"size": [width, height], "boxes": [], "polygons": [], "keypoints": [],
                                 "classifications": []}
        for field_name, value in sample.iter_fields():
            if isinstance(value, fo.Detections):
                for d in value.detections:
                    x, y, w, h = d.bounding_box
                    entry["boxes"].append([d.label, x * width, y * height, w * width, h * height])
            elif isinstance(value, fo.Polylines):
                for p in value.polylines:
                    entry["polygons"].append([p.label, [[c for x, y in shape for c in (x * width, y * height)]
                                                        for shape in p.points]])
            elif isinstance(value, fo.Keypoints):
                for k in value.keypoints:
                    entry["keypoints"].append([k.label, [None if math.isnan(x) else [x * width, y * height]
                                                         for x, y in k.points]])
            elif isinstance(value, fo.Classification) and field_name != "metadata":
                entry["classifications"].append(value.label)
        for key in ("boxes", "polygons", "keypoints", "classifications"):
            entry[key].sort(key=json.dumps)
        out[os.path.basename(sample.filepath)] = entry
    return out


def main() -> None:
    command, *args = sys.argv[1:]
    if command == "make":
        out, name = args
        dataset = build(out, name)
        export(dataset, out)
        print(json.dumps(pixels(dataset)))
    elif command == "load":
        dataset = load(*args)
        try:
            print(json.dumps(pixels(dataset)))
        finally:
            dataset.delete()
    elif command == "dump":
        print(json.dumps(pixels(fo.load_dataset(args[0]))))
    elif command == "delete":
        for name in args:
            if fo.dataset_exists(name):
                fo.delete_dataset(name)
        print(json.dumps({"deleted": args}))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
