"""What every job leans on: the error types, atomic files, directory locks, checksummed caches, free-space checks."""
