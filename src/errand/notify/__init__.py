"""Messages to people: email, SMS, chat and signed webhooks, through an outbox."""
