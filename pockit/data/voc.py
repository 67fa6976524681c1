"""Pascal VOC: one XML per image (LabelImg, CVAT 'PASCAL VOC 1.1', Roboflow).

Coordinates are read as written (no 1-based shift, the LabelImg/CVAT convention); ``difficult``
becomes ``ignore``. Parsing uses defusedxml (safe against entity attacks) so a malformed file is
reported with its line and column, and the rest of the set still loads.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from xml.etree.ElementTree import Element, ElementTree, ParseError, SubElement, indent

import defusedxml.ElementTree as SafeET
import numpy as np
from defusedxml import DefusedXmlException

from ._io import find_image, fmt_num, out_path, place_image, read_text
from .dataset import Dataset, ImageRecord, infer_source_frame, validate
from .errors import LabelError, number
from .report import ValidationReport


def _text(node: Element | None, tag: str, default: str | None = None) -> str | None:
    if node is None:
        return default
    child = node.find(tag)
    return child.text.strip() if child is not None and child.text is not None else default


def read_voc(path: str | Path, images_dir: str | Path | None = None, classes: Sequence[str] | None = None, *,
             on_outside: str = "clip", dup_iou: float = 0.95, check_images: bool = True, name: str | None = None) -> Dataset:
    """Read a VOC folder: ``Annotations/`` + ``JPEGImages/`` or XMLs beside their images.

    classes: the allowed class names in id order (other names are reported as unknown_class and
    dropped); default: ``classes.txt`` / CVAT ``labelmap.txt`` in the folder, else every name found, sorted. Images are looked up by the XML's <filename> in
    ``images_dir`` (default: JPEGImages/ if present, else the XML's own folder).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"VOC folder not found: {path}")
    ann_dir = path / "Annotations" if (path / "Annotations").is_dir() else path
    if images_dir is None:
        images_dir = path / "JPEGImages" if (path / "JPEGImages").is_dir() else None
    xmls = sorted(ann_dir.rglob("*.xml"))
    if not xmls:
        raise FileNotFoundError(f"no .xml annotation files under {ann_dir}")
    rep = ValidationReport(title=f"VOC import of {path}")
    parsed = []
    for x in xmls:
        rel = x.relative_to(ann_dir)
        try:
            root = SafeET.parse(x).getroot()
        except ParseError as e:
            line, col = getattr(e, "position", (None, None))
            rep.add("malformed_file", "skipped", f"malformed XML at line {line}, column {col}: {str(e).split(':')[0]}; "
                    "fix or re-export the file", file=str(x), line=line)
            continue
        except LookupError as e:  # <?xml encoding="..."?> that Python does not know
            rep.add("malformed_file", "skipped", f"declares an unknown text encoding ({e}); re-export the file as UTF-8",
                    file=str(x))
            continue
        except DefusedXmlException as e:  # entity declarations, external references: refused, never expanded
            what = {"EntitiesForbidden": "declares XML entity", "DTDForbidden": "has a DTD",
                    "ExternalReferenceForbidden": "refers to external XML"}.get(type(e).__name__, "uses unsupported XML")
            name = getattr(e, "name", None) or getattr(e, "sysid", None)
            rep.add("malformed_file", "skipped", f"{what}{f' {name!r}' if name else ''}, refused for safety (VOC files "
                    "need none): re-export the file", file=str(x))
            continue
        if root.tag != "annotation":
            rep.add("malformed_file", "skipped", f"root element is <{root.tag}>, expected <annotation>", file=str(x), line=1)
            continue
        img_dir = Path(images_dir) if images_dir is not None else x.parent
        fname = _text(root, "filename")
        sub = rel.parent
        if fname:
            img_path = img_dir / sub / fname if images_dir is not None else img_dir / fname
            file = (sub / fname).as_posix()
        else:
            img_path = find_image(img_dir / sub if images_dir is not None else img_dir, x.stem) or (img_dir / sub / f"{x.stem}.jpg")
            file = (sub / img_path.name).as_posix()
        size = root.find("size")
        try:
            w, h = (int(number(_text(size, t, "0"), f"<size><{t}>", minimum=0)) for t in ("width", "height"))
        except LabelError as e:
            rep.add("malformed_file", "kept", f"{e.detail}; the image's real size is used", file=str(x))
            w = h = 0
        objs = []
        for k, obj in enumerate(root.findall("object")):
            cname = _text(obj, "name")
            bb = obj.find("bndbox")
            if bb is None or any(_text(bb, t) is None for t in ("xmin", "ymin", "xmax", "ymax")):
                rep.add("malformed_line", "dropped", f"object #{k} ({cname!r}) has no <bndbox> xmin/ymin/xmax/ymax",
                        file=str(x), image=file, class_name=cname)
                continue
            try:
                box = [number(_text(bb, t), f"object #{k} <bndbox><{t}>") for t in ("xmin", "ymin", "xmax", "ymax")]
            except LabelError as e:
                rep.add("malformed_line", "dropped", e.detail, file=str(x), image=file, class_name=cname)
                continue
            if not cname:
                rep.add("unknown_class", "dropped", f"object #{k} has no <name>", file=str(x), image=file, box=box)
                continue
            objs.append((cname, box, _text(obj, "difficult", "0") in ("1", "true")))
        meta = {"label_file": str(x)}
        pk = root.find("pockit")
        source, frame, ts = "default", None, None
        if pk is not None:
            source = pk.get("source") or source
            try:
                frame = number(pk.get("frame"), "<pockit frame=>", integer=True) if pk.get("frame") not in (None, "") else None
                ts = number(pk.get("timestamp"), "<pockit timestamp=>") if pk.get("timestamp") not in (None, "") else None
            except LabelError as e:
                rep.add("malformed_file", "kept", f"{e.detail}; read without frame/timestamp", file=str(x))
                frame = ts = None
        parsed.append((file, img_path, w, h, objs, meta, source, frame, ts))
    if classes is None:
        names_file = next((p / n for p in (path, ann_dir) for n in ("classes.txt", "labelmap.txt") if (p / n).exists()), None)
        if names_file is not None:  # LabelImg classes.txt / CVAT labelmap.txt ('name:color::' lines)
            classes = list(dict.fromkeys(ln.split(":")[0].strip() for ln in read_text(names_file, "class names file").splitlines()
                                         if ln.strip() and not ln.startswith("#")))
    names = list(classes) if classes is not None else sorted({o[0] for p in parsed for o in p[4]})
    index = {n: i for i, n in enumerate(names)}
    images = []
    for file, img_path, w, h, objs, meta, source, frame, ts in parsed:
        boxes, cids, ign = [], [], []
        for cname, box, diff in objs:
            if cname not in index:
                rep.add("unknown_class", "dropped", f"class {cname!r} is not one of {names}", file=meta["label_file"],
                        image=file, box=box, class_name=cname)
                continue
            boxes.append(box), cids.append(index[cname]), ign.append(diff)
        images.append(ImageRecord(file, img_path, w, h, np.array(boxes).reshape(-1, 4), cids, ign, source=source, frame=frame,
                                  timestamp=ts, meta=meta))
    ds = Dataset(images, names, images_dir or ann_dir, rep, name or path.name)
    infer_source_frame(ds.images)
    return validate(ds, on_outside=on_outside, dup_iou=dup_iou, check_images=check_images)


def write_voc(ds: Dataset, out: str | Path, *, images: str = "copy", decimals: int = 3) -> Path:
    """Write ``out/Annotations/<file>.xml`` (+ images in ``out/JPEGImages/`` unless images='none').

    decimals: coordinates are rounded to this many decimals and written without trailing zeros, so
    whole-pixel boxes stay integers and sub-pixel boxes keep their decimals (VOC allows both;
    0.001 px also absorbs the noise of YOLO's 6 normalised decimals on images up to 666 px);
    ``decimals=0`` rounds every coordinate to an integer, for tools that only read integer VOC
    (``pockit data convert --voc-int``).
    """
    out = Path(out)
    dests = []  # every output path checked before anything is written
    for im in ds.images:
        lf = im.meta.get("label_file")
        norm = PurePosixPath(im.file.replace("\\", "/"))
        img_dest = out_path(out / "JPEGImages", im.file, label_file=lf, follow_last=False)
        dests.append((im, out_path(out / "Annotations", str(norm.with_suffix(".xml")), label_file=lf), img_dest))
    for im, dest, img_dest in dests:
        root = Element("annotation")
        SubElement(root, "folder").text = "JPEGImages"
        SubElement(root, "filename").text = img_dest.name
        SubElement(root, "path").text = str(im.path)
        src = SubElement(root, "source")
        SubElement(src, "database").text = "pockit"
        attrs = {"source": im.source}
        if im.frame is not None:
            attrs["frame"] = str(im.frame)
        if im.timestamp is not None:
            attrs["timestamp"] = repr(float(im.timestamp))
        SubElement(root, "pockit", attrs)
        size = SubElement(root, "size")
        SubElement(size, "width").text = str(im.width)
        SubElement(size, "height").text = str(im.height)
        SubElement(size, "depth").text = "3"
        SubElement(root, "segmented").text = "0"
        for b, c, ig in zip(im.xyxy, im.class_ids, im.ignore):
            o = SubElement(root, "object")
            SubElement(o, "name").text = ds.class_names[c]
            SubElement(o, "pose").text = "Unspecified"
            SubElement(o, "truncated").text = "0"
            SubElement(o, "difficult").text = "1" if ig else "0"
            bb = SubElement(o, "bndbox")
            for tag, v in zip(("xmin", "ymin", "xmax", "ymax"), b):
                SubElement(bb, tag).text = fmt_num(float(v), decimals)
        tree = ElementTree(root)
        indent(tree)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tree.write(dest, encoding="utf-8", xml_declaration=False)
        place_image(im, img_dest, images)
    (out / "Annotations").mkdir(parents=True, exist_ok=True)
    return out
