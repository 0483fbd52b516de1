"""Tables, figures and reports, and what they print beside the measurements: the grid's verdict
thresholds, the method advice, the paper's published numbers."""
from ..evaluate.grid import BREAK_POINTS, FLOOR_POINTS, cell_verdict, crop_gaps
from .choice import SUMMARY, setting_of
from .paper import SUPPORT, TABLE1_ACCURACY, TABLE5_UTILITY
from .tables import (evaluation_table, fmt_pct, grid_table, markdown_table, utility_comparison_table, utility_table,
                     write_grid)

__all__ = ["BREAK_POINTS", "FLOOR_POINTS", "SUMMARY", "SUPPORT", "TABLE1_ACCURACY", "TABLE5_UTILITY", "cell_verdict",
           "crop_gaps", "evaluation_table", "fmt_pct", "grid_table", "markdown_table", "setting_of",
           "utility_comparison_table", "utility_table", "write_grid"]
