"""Loading the user's application from ``module:callable`` specs."""
