"""The reservations dialect (spec/reservations-api.txt): UPPER_CASE error codes."""
