"""Reasoning with a configured LLM provider (pydantic-ai), by model tier."""
