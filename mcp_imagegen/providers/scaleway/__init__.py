"""Scaleway Generative APIs: vision through the OpenAI-compatible chat API."""
