"""GridMart marketplace: the HTTP service, web pages and the `gridmart` CLI."""
