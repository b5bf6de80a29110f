"""Where each cell is: `cells` (real geography from GeoNames, local time, points of interest) and `fact_check` (every
place or time in a text that the cell does not support)."""
