"""Tables, figures and reports, and what they print beside the measurements: the grid's verdict
thresholds, the method advice, the paper's published numbers."""
from ..evaluate.grid import BREAK_POINTS, FLOOR_POINTS, cell_verdict, crop_gaps
from .choice import SUMMARY, frontier_summary, recommended, setting_of
from .robustness import RULE, verdict, worst_cases
from .paper import PAPER_METHOD_SSIM, SUPPORT, TABLE1_ACCURACY, TABLE5_UTILITY
from .tables import (evaluation_table, fmt_pct, grid_table, markdown_table, utility_comparison_table, utility_table,
                     write_grid)

__all__ = ["RULE", "verdict", "BREAK_POINTS", "FLOOR_POINTS", "PAPER_METHOD_SSIM", "SUMMARY", "SUPPORT", "TABLE1_ACCURACY", "TABLE5_UTILITY",
           "cell_verdict", "crop_gaps", "evaluation_table", "fmt_pct", "frontier_summary", "grid_table", "markdown_table",
           "recommended", "setting_of", "utility_comparison_table", "utility_table", "worst_cases", "write_grid"]
