"""The book's helpers: the command line that runs chapters, the chapters' items, the interactive explorer."""

from invnb.book.chapter_items import EMBEDDED_NAMES, classifier, image_batch, reid_item, sr_samples, tradeoff_item, vdsr_item, vdsr_model
from invnb.book.explorer import ExplorerItem, InverseExplorer
from invnb.book.results import BASELINE_EXCLUDED, CLAIM1_COLUMNS, benchmark_findings, chirp_findings, claim1_rows, claim1_table, gaps_table, glue_values, load_json, provenance_markdown, sanity_findings
from invnb.book.setup_cell import SETUP_END, repository_url, setup_lines, with_setup
from invnb.book.switch import model_switch

__all__ = [
    "BASELINE_EXCLUDED", "CLAIM1_COLUMNS", "EMBEDDED_NAMES", "ExplorerItem", "InverseExplorer", "SETUP_END",
    "benchmark_findings", "chirp_findings", "claim1_rows", "claim1_table", "classifier", "gaps_table",
    "glue_values", "image_batch", "load_json", "model_switch", "provenance_markdown", "reid_item",
    "repository_url", "sanity_findings", "setup_lines", "sr_samples", "tradeoff_item", "vdsr_item",
    "vdsr_model", "with_setup",
]
