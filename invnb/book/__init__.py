"""The book's helpers: the command line that runs chapters, the chapters' items, the interactive explorer."""

from invnb.book.chapter_items import classifier, image_batch, reid_item, sr_samples, tradeoff_item, vdsr_item, vdsr_model
from invnb.book.explorer import ExplorerItem, InverseExplorer
from invnb.book.setup_cell import SETUP_END, repository_url, setup_lines, with_setup

__all__ = [
    "ExplorerItem", "InverseExplorer", "SETUP_END", "classifier", "image_batch", "reid_item",
    "repository_url", "setup_lines", "sr_samples", "tradeoff_item", "vdsr_item", "vdsr_model", "with_setup",
]
