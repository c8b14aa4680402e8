"""The automations dialect (spec/automations-api.txt): ``{"error", "message", "status"}`` errors."""
