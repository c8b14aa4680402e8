"""Automations: agents that react to events with steps, templates, the event catalog and credits."""
