"""What any TaskIQ app imports to track its tasks: the middleware and what it runs on."""
