"""obslab: the command line and the native stack runner."""
