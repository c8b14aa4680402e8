"""The dialects: each translates HTTP to the core and the core's results and errors back."""
