"""Pure renderers: settings in, file text out. No Pulumi imports, so tests feed the output to real programs."""
