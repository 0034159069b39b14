"""Command-line adapters over the library. Each module holds one command group."""
