"""Black-box tests: `medport serve` runs as a real subprocess and is spoken to over HTTP only."""
