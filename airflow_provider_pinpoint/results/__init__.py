"""The results table: one row per input row, journalled as it goes, compacted at the end, read to resume."""
