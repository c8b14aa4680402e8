"""webhooks: endpoints an organization registers, and the signed, retried deliveries of Errand's
own events to them (issue 14, "Outbound webhooks"; docs/webhooks.md)."""
