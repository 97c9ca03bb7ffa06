"""Mistral: images through an agent with the `image_generation` tool, vision through chat."""
