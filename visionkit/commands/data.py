"""`visionkit data convert|check`: detection labels from VOC, YOLO or LabelMe to COCO (and COCO
to YOLO); counts and problems of a COCO set."""

from __future__ import annotations

import argparse
from pathlib import Path

MAX_PRINTED = 10  # issues printed; all are in the issues file


def main(argv: list[str]) -> int:
    """Dispatch `convert` or `check`."""
    parser = argparse.ArgumentParser(prog="visionkit data",
                                     description="Convert detection labels; check a COCO set.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{convert,check}")
    convert = commands.add_parser(
        "convert", help="VOC XML, YOLO txt or LabelMe JSON to COCO JSON; COCO to YOLO",
        description="Convert detection labels. Every record skipped or fixed (box clipped to its "
                    "image, box outside it, unknown class, missing image, malformed line) is "
                    "named in <out>.issues.txt and counted in the output line.")
    convert.add_argument("source", help="VOC: folder of XML; YOLO: image folder or list of image "
                                        "paths; LabelMe: folder of JSON; COCO: the JSON file")
    convert.add_argument("--from", dest="source_format", required=True,
                         choices=["voc", "yolo", "labelme", "coco"])
    convert.add_argument("--to", default="coco", choices=["coco", "yolo"],
                         help="coco (default; from voc/yolo/labelme) or yolo (from coco)")
    convert.add_argument("--out", required=True,
                         help="the COCO JSON to write, or (--to yolo) the output folder")
    convert.add_argument("--classes", help="class names, one per line: their order gives category "
                                           "ids 1..K (YOLO: indices 0..K-1); names outside it are "
                                           "skipped. Default: VOC/LabelMe the names met, sorted; "
                                           "YOLO classes.txt beside the labels")
    convert.add_argument("--images", help="VOC: the image folder (default ../JPEGImages beside "
                                          "the XML folder)")
    convert.add_argument("--labels", help="YOLO: the labels folder (default: the image path with "
                                          "its last images/ replaced by labels/, else beside the images)")
    convert.add_argument("--image-root", help="what COCO file_name is relative to (default: the "
                                              "image folder; --to yolo: the JSON's folder)")
    convert.add_argument("--split", help="VOC: a file of image stems to convert (ImageSets/Main/*.txt)")
    check = commands.add_parser(
        "check", help="per-class counts, boxes per image, box sizes (PNG) and problems of a COCO set",
        description="Read a COCO detection set as training would and report what it holds and "
                    "every problem found (invalid records, image sizes that differ from the JSON).")
    check.add_argument("json", help="COCO instances JSON")
    check.add_argument("--image-root", help="folder file_name is relative to (default: the JSON's folder)")
    check.add_argument("--out", help="folder for box_sizes.png (default: runs/data_check/<json stem>/)")
    args = parser.parse_args(argv)  # before the heavy imports: --help is instant
    if args.command == "convert":
        return _convert(args, parser)
    return _check(args)


def _convert(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from visionkit.data.label_formats import (
        convert_to_coco,
        issues_path,
        read_class_names,
        read_split_ids,
        write_issues,
        write_yolo,
    )

    if (args.source_format == "coco") != (args.to == "yolo"):
        parser.error("convert --from voc|yolo|labelme --to coco, or --from coco --to yolo")
    if (args.split or args.images) and args.source_format != "voc":
        parser.error("--split and --images are for --from voc")
    if args.labels and args.source_format != "yolo":
        parser.error("--labels is for --from yolo")
    if args.to == "yolo":
        images, boxes, issues = write_yolo(args.source, args.out, args.image_root)
        listed = Path(args.out) / "issues.txt"
        write_issues(listed, issues)
        print(f"wrote YOLO labels of {images} images ({boxes} boxes) to {args.out}/labels/, "
              f"classes.txt and images.txt; {_issue_summary(issues, listed)}")
        _print_issues(issues, listed)
        return 0
    classes = read_class_names(args.classes) if args.classes else None
    ids = read_split_ids(args.split) if args.split else None
    labels = convert_to_coco(args.source_format, args.source, args.out, images=args.images,
                             labels_dir=args.labels, image_root=args.image_root, classes=classes,
                             ids=ids)
    listed = issues_path(args.out)
    print(f"wrote {args.out}: {len(labels.images)} images, {labels.num_boxes} boxes, "
          f"{len(labels.classes)} classes ({', '.join(labels.classes)}); "
          f"{_issue_summary(labels.issues, listed)}")
    _print_issues(labels.issues, listed)
    return 0


def _issue_summary(issues: list, listed: Path) -> str:
    if not issues:
        return "nothing skipped or fixed"
    clipped = sum(issue.action.startswith("clipped") for issue in issues)
    skipped = sum(issue.action in ("skipped", "dropped") for issue in issues)
    other = len(issues) - clipped - skipped
    return f"{skipped} records skipped, {clipped} boxes clipped, {other} other notes (in {listed})"


def _print_issues(issues: list, listed: Path) -> None:
    for issue in issues[:MAX_PRINTED]:
        print(f"  {issue}")
    if len(issues) > MAX_PRINTED:
        print(f"  ... {len(issues) - MAX_PRINTED} more in {listed}")


def _check(args: argparse.Namespace) -> int:
    from visionkit.evaluation.label_check import check_labels, default_report_dir
    from visionkit.evaluation.plots import plot_box_sizes

    root = args.image_root or str(Path(args.json).parent)
    report = check_labels(args.json, root)
    for line in report.lines():
        print(line)
    out = Path(args.out) if args.out else default_report_dir(args.json)
    path = plot_box_sizes(report.box_sides, out / "box_sizes.png", title=Path(args.json).name)
    print(f"wrote {path}")
    return 0
