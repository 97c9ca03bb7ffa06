"""Google: the Gemini API and Vertex AI endpoints and their specs, Gemini's generateContent image
models, and Imagen's `:predict` on Vertex."""
