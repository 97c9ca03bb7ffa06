"""`python -m mcp_imagegen`: the same as the `mcp-imagegen` command."""

from mcp_imagegen.cli import main

if __name__ == "__main__":
    main()
