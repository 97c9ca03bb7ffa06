"""OpenAI and everything that speaks its APIs: the endpoints and their specs (OpenAI, Azure OpenAI,
named compatible endpoints), the Images API, the Responses API's image_generation tool, the
OpenAI-compatible chat API for vision (also spoken by Mistral and Scaleway), and the model rules."""
