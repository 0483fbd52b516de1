"""Tables and reports."""
from .tables import evaluation_table, grid_table, markdown_table, utility_comparison_table, utility_table, write_grid

__all__ = ["evaluation_table", "grid_table", "markdown_table", "utility_comparison_table", "utility_table", "write_grid"]
