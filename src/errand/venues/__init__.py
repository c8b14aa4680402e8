"""Venue search: which restaurants, hotels and events the caller's providers sell (errand.venues.service)."""
