"""Topic matching: normaliser, query language, live percolator and the history index."""
