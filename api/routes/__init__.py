"""HTTP routes: one controller per resource."""
