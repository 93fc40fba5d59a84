"""One router per resource: health, weights, the tasks, chain, preview, and the page."""
