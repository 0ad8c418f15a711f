"""The book's helpers: the command line that runs chapters, the chapters' items, the interactive explorer."""

from invnb.book.chapter_items import EMBEDDED_NAMES, classifier, image_batch, reid_item, sr_samples, tradeoff_item, vdsr_item, vdsr_model
from invnb.book.claim2 import CLAIM2_METHODS, FIDELITY_TARGETS, agreement_table, claim2_findings, fidelity_findings, fidelity_table, follows, provenance_note
from invnb.book.explorer import ExplorerItem, InverseExplorer
from invnb.book.results import BASELINE_EXCLUDED, BENCHMARK_TARGETS, CLAIM1_COLUMNS, benchmark_findings, chirp_findings, claim1_rows, claim1_table, gaps_table, glue_values, load_json, provenance_markdown, sanity_findings, targets_table
from invnb.book.setup_cell import SETUP_END, repository_url, setup_lines, with_setup
from invnb.book.switch import model_switch

__all__ = [
    "BASELINE_EXCLUDED", "BENCHMARK_TARGETS", "CLAIM1_COLUMNS", "CLAIM2_METHODS", "EMBEDDED_NAMES", "ExplorerItem",
    "FIDELITY_TARGETS", "InverseExplorer", "SETUP_END", "agreement_table", "benchmark_findings",
    "chirp_findings", "claim1_rows", "claim1_table", "claim2_findings", "classifier", "fidelity_findings",
    "fidelity_table", "follows", "gaps_table", "glue_values", "image_batch", "load_json", "model_switch",
    "provenance_markdown", "provenance_note", "reid_item", "repository_url", "sanity_findings", "setup_lines",
    "sr_samples", "targets_table", "tradeoff_item", "vdsr_item", "vdsr_model", "with_setup",
]
