"""Chemistry on one molecule: parse, standardize to the parent, fingerprint, depict."""
