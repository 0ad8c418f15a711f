"""Every figure of the book (all of invnb's matplotlib lives here)."""

from invnb.plot.benchmark import plot_benchmark_curves, plot_benchmark_tradeoff
from invnb.plot.claim2 import CLAIM2_COLORS, plot_chirp_curves, plot_chirp_maps, plot_claim2_scale
from invnb.plot.colors import METHOD_COLORS, SETTING_METHODS, method_color, method_colors, method_linestyle
from invnb.plot.fidelity import plot_fidelity_curves
from invnb.plot.figures import attribution_grid, legend_below, plot_curves, plot_reid, plot_tradeoff, plot_tradeoff_comparison, shared_colorbar, show_attribution, show_image, to_image
from invnb.plot.images import colorize, colour_scale_html, to_png
from invnb.plot.sanity import plot_cascade_step, plot_randomisation
from invnb.plot.sr import plot_band_retention, plot_chirp_colour_scale, plot_chirp_grid, plot_chirp_profiles, plot_fidelity_amount, plot_fidelity_sweep, plot_frequency_profile, plot_retention_summary
from invnb.plot.sr_truth import PAGE_WIDTH, SCALE_COLORS, ground_truth_figures, plot_band_error, plot_frequency_agreement, plot_frequency_agreement_grid, plot_frequency_response, plot_lam

__all__ = [
    "CLAIM2_COLORS", "METHOD_COLORS", "PAGE_WIDTH", "SCALE_COLORS", "SETTING_METHODS", "attribution_grid",
    "colorize", "colour_scale_html", "ground_truth_figures", "legend_below", "method_color", "method_colors",
    "method_linestyle", "plot_band_error", "plot_band_retention", "plot_benchmark_curves",
    "plot_benchmark_tradeoff", "plot_cascade_step", "plot_chirp_colour_scale", "plot_chirp_curves",
    "plot_chirp_grid", "plot_chirp_maps", "plot_chirp_profiles", "plot_claim2_scale", "plot_curves",
    "plot_fidelity_amount", "plot_fidelity_curves", "plot_fidelity_sweep", "plot_frequency_agreement",
    "plot_frequency_agreement_grid", "plot_frequency_profile", "plot_frequency_response", "plot_lam",
    "plot_randomisation", "plot_reid", "plot_retention_summary", "plot_tradeoff", "plot_tradeoff_comparison",
    "shared_colorbar", "show_attribution", "show_image", "to_image", "to_png",
]
