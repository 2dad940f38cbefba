"""Failed attempts grouped by what went wrong, and what an operator does with a group."""
