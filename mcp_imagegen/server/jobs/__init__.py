"""Jobs: the core (start, steps, cancel, retention), image work, and delivery to the caller."""
