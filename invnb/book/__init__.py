"""The book's helpers: the command line that runs chapters, the chapters' items, the interactive explorer."""

from invnb.book.chapter_items import (
    classifier,
    image_batch,
    reid_item,
    sr_samples,
    tradeoff_item,
    vdsr_item,
    vdsr_model,
)
from invnb.book.explorer import ExplorerItem, InverseExplorer

__all__ = [
    "ExplorerItem", "InverseExplorer", "classifier", "image_batch", "reid_item", "sr_samples",
    "tradeoff_item", "vdsr_item", "vdsr_model",
]
