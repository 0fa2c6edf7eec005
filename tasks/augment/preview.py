"""reports/augment_preview.png: a few originals beside their copies, to see what a policy does."""

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tasks.common.files import atomic_path
from tasks.common.sets import set_order


def preview_rows(training_set: list[dict], count: int) -> list[dict]:
    """Pick `count` originals for the preview, taking classes in turn so each one shows."""
    by_class: dict[str, list[dict]] = {}
    for row in sorted(training_set, key=set_order):
        by_class.setdefault(row["class"], []).append(row)
    chosen: list[dict] = []
    for rank in range(max((len(rows) for rows in by_class.values()), default=0)):
        chosen += [rows[rank] for _, rows in sorted(by_class.items()) if rank < len(rows)]
    return chosen[:count]


def draw_preview(examples: list[tuple[str, np.ndarray, list[np.ndarray]]], path: Path, scale: int = 4) -> None:
    """One row per original: its class, the original, then its copies; labelled like a before/after figure."""
    height, width = examples[0][1].shape[:2]
    cell_w, cell_h, label_w, header_h, pad = width * scale, height * scale, 110, 24, 6
    columns = 1 + max(len(copies) for _, _, copies in examples)
    sheet = Image.new("RGB", (label_w + columns * (cell_w + pad), header_h + len(examples) * (cell_h + pad)), "white")
    canvas = ImageDraw.Draw(sheet)
    for column in range(columns):
        canvas.text(
            (label_w + column * (cell_w + pad), 4), "original" if column == 0 else f"copy {column}", fill="black"
        )
    for row, (name, original, copies) in enumerate(examples):
        top = header_h + row * (cell_h + pad)
        canvas.text((4, top + cell_h // 2 - 6), name, fill="black")
        for column, pixels in enumerate([original, *copies]):
            tile = Image.fromarray(pixels).convert("RGB").resize((cell_w, cell_h), Image.NEAREST)
            sheet.paste(tile, (label_w + column * (cell_w + pad), top))
    with atomic_path(path) as temporary:
        sheet.save(temporary, format="PNG")
