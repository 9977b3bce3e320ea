"""The marketplace's web pages: static HTML, CSS and ES modules, signing through the member's wallet."""
